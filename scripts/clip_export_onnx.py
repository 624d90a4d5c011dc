"""Exports a Hugging Face CLIPModel folder's two towers to ONNX for the speed peer (run in .venv-clip).

    python scripts/clip_export_onnx.py MODEL_DIR OUT_DIR

Writes OUT_DIR/vision.onnx (pixel_values [N, 3, S, S] -> image_embeds) and OUT_DIR/text.onnx
(input_ids, attention_mask [N, L] -> text_embeds), fp32, dynamic batch and length, and
OUT_DIR/tokens_B.npz for the benchmark sentences at each batch size (the same list `headtune bench
text` uses, tokenized by transformers' CLIP tokenizer and padded to the longest).
"""
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPModel, CLIPTokenizer

from bench_common import benchmark_sentences



class Vision(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.visual_projection(self.model.vision_model(pixel_values=pixel_values).pooler_output)


class Text(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        pooled = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.model.text_projection(pooled)


def main():
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    model = CLIPModel.from_pretrained(model_dir, attn_implementation="eager").float().eval()
    size = model.config.vision_config.image_size
    with torch.no_grad():
        torch.onnx.export(Vision(model), (torch.zeros(1, 3, size, size),), out / "vision.onnx", input_names=["pixel_values"],
                          output_names=["image_embeds"], dynamic_axes={"pixel_values": {0: "n"}, "image_embeds": {0: "n"}},
                          opset_version=17, dynamo=False)
        ids = torch.ones(1, 8, dtype=torch.long)
        torch.onnx.export(Text(model), (ids, ids), out / "text.onnx", input_names=["input_ids", "attention_mask"],
                          output_names=["text_embeds"],
                          dynamic_axes={"input_ids": {0: "n", 1: "l"}, "attention_mask": {0: "n", 1: "l"}, "text_embeds": {0: "n"}},
                          opset_version=17, dynamo=False)
    tokenizer = CLIPTokenizer.from_pretrained(Path(__file__).resolve().parent.parent / "weights" / "clip-bpe")
    for batch in (1, 32):
        encoded = tokenizer(benchmark_sentences(batch), padding=True, return_tensors="np")
        np.savez(out / f"tokens_{batch}.npz", input_ids=encoded["input_ids"].astype(np.int64),
                 attention_mask=encoded["attention_mask"].astype(np.int64))
    print(f"wrote {out}/vision.onnx, text.onnx, tokens_*.npz")


if __name__ == "__main__":
    main()
