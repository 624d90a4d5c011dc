"""EfficientNet-Lite0's trainable tail in PyTorch, parameterized as headtune trains it.

Used by scripts/make_tail_goldens.py (gradients for the Swift tests) and scripts/bench_finetune_peers.py
(the same fine-tuning in PyTorch). Built on shared/reference/python/effnet_lite.py with the real weights
from weights/efficientnet-lite0.safetensors: BatchNorm folded into each convolution (weight scaled per
output channel, bias = beta - mean * scale; eps 1e-3), the folded weights and biases the leaves, named
as headtune names them (`blocks.{i}.expand.weight`, `blocks.{i}.depthwise.bias`, `head.weight`, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "reference" / "python"))
import effnet_lite  # noqa: E402

BLOCKS = sum(s[0] for s in effnet_lite.STAGES)  # 16


def stage_ends() -> list[int]:
    ends, end = [], -1
    for repeats, *_ in effnet_lite.STAGES:
        end += repeats
        ends.append(end)
    return ends


def load_model(dtype=torch.float64) -> effnet_lite.EfficientNetLite0:
    model = effnet_lite.EfficientNetLite0()
    state = load_file(str(ROOT / "weights" / "efficientnet-lite0.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not [k for k in missing if not k.endswith("num_batches_tracked")] and not unexpected
    return model.to(dtype).eval()


def fold(conv_weight, bn, eps=1e-3):
    scale = bn.weight / torch.sqrt(bn.running_var + eps)
    weight = conv_weight * scale.reshape(-1, *([1] * (conv_weight.dim() - 1)))
    bias = bn.bias - bn.running_mean * scale
    return weight.detach().clone().requires_grad_(True), bias.detach().clone().requires_grad_(True)


class Tail:
    """Blocks `cut..15` and the head convolution; `unfreeze` = 17 - cut."""

    def __init__(self, model, unfreeze: int):
        self.model = model
        self.cut = BLOCKS + 1 - unfreeze
        self.leaves: dict[str, torch.Tensor] = {}
        for i in range(self.cut, BLOCKS):
            block = model._blocks[i]
            if block.e != 1:
                self.leaves[f"blocks.{i}.expand.weight"], self.leaves[f"blocks.{i}.expand.bias"] = fold(block._expand_conv.weight, block._bn0)
            self.leaves[f"blocks.{i}.depthwise.weight"], self.leaves[f"blocks.{i}.depthwise.bias"] = fold(block._depthwise_conv.weight, block._bn1)
            self.leaves[f"blocks.{i}.project.weight"], self.leaves[f"blocks.{i}.project.bias"] = fold(block._project_conv.weight, block._bn2)
        self.leaves["head.weight"], self.leaves["head.bias"] = fold(model._conv_head.weight, model._bn1)

    def forward(self, y: torch.Tensor, include_stages: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """y: [n, c, h, w] cut activation -> ([n, 1280] pooled features, pooled outputs of stages ending in the tail)."""
        ends, stages = stage_ends(), []
        for i in range(self.cut, BLOCKS):
            block, inp = self.model._blocks[i], y
            if block.e != 1:
                y = F.relu6(F.conv2d(y, self.leaves[f"blocks.{i}.expand.weight"], self.leaves[f"blocks.{i}.expand.bias"]))
            conv = block._depthwise_conv
            k, s = conv.kernel_size[0], conv.stride[0]
            ph, pw = effnet_lite.same_pads(y.shape[-2], k, s), effnet_lite.same_pads(y.shape[-1], k, s)
            y = F.relu6(F.conv2d(F.pad(y, (pw[0], pw[1], ph[0], ph[1])), self.leaves[f"blocks.{i}.depthwise.weight"],
                                 self.leaves[f"blocks.{i}.depthwise.bias"], s, 0, 1, conv.groups))
            y = F.conv2d(y, self.leaves[f"blocks.{i}.project.weight"], self.leaves[f"blocks.{i}.project.bias"])
            if block.skip:
                y = y + inp
            if include_stages and i in ends:
                stages.append(y.mean(dim=(2, 3)))
        features = F.relu6(F.conv2d(y, self.leaves["head.weight"], self.leaves["head.bias"])).mean(dim=(2, 3))
        return features, stages

    def cut_shape(self) -> tuple[int, int, int]:
        """(h, w, c) of the cut activation at 224 px."""
        with torch.no_grad():
            h = F.relu6(self.model._bn0(self.model._conv_stem(torch.zeros(1, 3, 224, 224, dtype=self.model._fc.weight.dtype))))
            for i in range(self.cut):
                h = self.model._blocks[i](h)
        return h.shape[2], h.shape[3], h.shape[1]

    @staticmethod
    def headtune_layout(name: str, g: torch.Tensor) -> torch.Tensor:
        """A gradient in headtune's layout: 1x1 [out, in], depthwise [k, k, channels]."""
        if g.dim() == 4 and g.shape[1] == 1 and g.shape[2] > 1:
            return g[:, 0].permute(1, 2, 0)
        if g.dim() == 4:
            return g[:, :, 0, 0]
        return g
