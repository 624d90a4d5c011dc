#!/usr/bin/env python3
"""Reference CLIP checkpoints with seeded random weights, and their expected outputs (transformers.CLIPModel).

    scripts/check-clip goldens                 # or: .venv-clip/bin/python scripts/make_clip_fixture.py
    scripts/check-clip full-size [DIR]         # or: ... make_clip_fixture.py --full-size DIR

Tiny (default): Tests/ModelsTests/Resources/tiny-clip/, committed, under 2 MB:
  model.safetensors        fp16 weights under the Hugging Face key names (the text tower keeps CLIP's real
                           49,408-token vocabulary so real token ids work; that table is most of the file)
  config.json              CLIPConfig, text_config.eos_token_id = 2 as in the openai/clip-vit-* configs
                           (transformers then pools at argmax(input_ids))
  config-eos-49407.json    the same with eos_token_id = 49407 (pooling at the first 49407): the variant
  preprocessor_config.json CLIPImageProcessor settings at this image size
  pixel_values_nchw.npy, pixel_values_nhwc.npy   2 seeded N(0,1) images, float32
  expected.json            inputs and outputs, see "about" inside

The expected outputs come from the fp32 model holding the fp16-rounded weights (the checkpoint loaded back
and cast to float32), so Swift and Python compute on the same numbers; *_fp64 entries are the same model in
float64, to size the fp32 error.

Full size (--full-size DIR, nothing committed): a seeded random ViT-B/32 CLIPModel saved with fp32
safetensors (~600 MB), the tokenizer files and the same kinds of expected outputs at 224 px.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

ROOT = Path(__file__).resolve().parent.parent
TINY_OUT = ROOT / "Tests" / "ModelsTests" / "Resources" / "tiny-clip"
VOCAB_DIR = ROOT / "weights" / "clip-bpe"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TEXTS = ["a photo of a cat", "a diagram", "two dogs playing in the snow next to a red barn at sunset"]
# Hand-made ids without an end-of-text token, where the two pooling rules pick different positions:
# argmax(input_ids) -> 2 (the 49406), first position of 49407 -> 0 (no 49407: argmax of all zeros).
POOLING_PROBE = [[320, 1125, 49406, 539, 2368]]

def clip_settings(text: tuple[int, int, int, int], vision: tuple[int, int, int, int], image_size: int, patch_size: int,
                  projection_dim: int) -> dict:
    """CLIPConfig keyword arguments; text/vision = (hidden size, layers, heads, MLP width), quick_gelu,
    text_config.eos_token_id = 2 as in the openai/clip-vit-* configs."""
    (text_width, text_layers, text_heads, text_mlp), (vision_width, vision_layers, vision_heads, vision_mlp) = text, vision
    return dict(
        text_config=dict(vocab_size=49408, hidden_size=text_width, num_hidden_layers=text_layers,
                         num_attention_heads=text_heads, intermediate_size=text_mlp, max_position_embeddings=77,
                         hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=projection_dim,
                         bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(image_size=image_size, patch_size=patch_size, hidden_size=vision_width,
                           num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
                           intermediate_size=vision_mlp, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                           num_channels=3, projection_dim=projection_dim),
        projection_dim=projection_dim, logit_scale_init_value=2.6592,
    )


TINY = clip_settings(text=(16, 2, 2, 32), vision=(32, 2, 4, 64), image_size=32, patch_size=8, projection_dim=16)
# openai/clip-vit-base-patch32's shape.
VIT_B32 = clip_settings(text=(512, 12, 8, 2048), vision=(768, 12, 12, 3072), image_size=224, patch_size=32, projection_dim=512)


def seeded_model(settings: dict, seed: int) -> CLIPModel:
    """CLIPModel(CLIPConfig(...)) with transformers' initialisation, then every bias and LayerNorm
    parameter moved off its 0/1 init so that a swapped or skipped one shows in the outputs."""
    torch.manual_seed(seed)
    config = CLIPConfig(**settings)
    config._attn_implementation = "eager"
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias") or "norm" in name or "layrnorm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def rounded_to_fp16(model: CLIPModel, directory: Path) -> CLIPModel:
    """Saves `model` as fp16 safetensors and returns an fp32 model holding exactly those values."""
    model.half().save_pretrained(directory, safe_serialization=True)
    model.float()
    state = {k: v.float() for k, v in load_file(directory / "model.safetensors").items()}
    reloaded = CLIPModel(model.config).eval()
    missing, unexpected = reloaded.load_state_dict(state, strict=False)
    # position_ids are non-persistent buffers in transformers 5; anything else must be in the file.
    assert not [k for k in missing if not k.endswith("position_ids")] and not unexpected, (missing, unexpected)
    return reloaded


def floats(tensor: torch.Tensor):
    """Nested lists of the values; float32 values as the shortest decimals that read back as the same float32."""
    array = tensor.detach().cpu().numpy()
    if array.dtype != np.float32:
        return array.tolist()

    def convert(a):
        return float(str(np.float32(a))) if np.ndim(a) == 0 else [convert(x) for x in a]
    return convert(array)


def run(model: CLIPModel, tokenizer: CLIPTokenizer, pixel_values: torch.Tensor, dtype: torch.dtype) -> dict:
    model = model.to(dtype)
    pixels = pixel_values.to(dtype)
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pixel_values=pixels)
        # In transformers 5 out.*_model_output.pooler_output is already projected; the towers alone give the
        # pooled outputs before projection.
        text_out = model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        vision_out = model.vision_model(pixel_values=pixels)
        text_pooled = text_out.pooler_output  # [3, text hidden]: final_layer_norm output at the pooling position
        image_pooled = vision_out.pooler_output  # [2, vision hidden]: post_layernorm(class token)
        text_features = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        image_features = model.get_image_features(pixel_values=pixels)
        text_embeds = model.text_projection(text_pooled)
        image_embeds = model.visual_projection(image_pooled)
        # transformers 5 returns a BaseModelOutputWithPooling (projected pooler_output), 4.x a tensor.
        for features, projected in ((text_features, text_embeds), (image_features, image_embeds)):
            features = getattr(features, "pooler_output", features)
            assert torch.equal(features, projected), "get_*_features is the projection, not normalized"
        alone = []
        for text in TEXTS:
            single = tokenizer([text], truncation=True, max_length=77, return_tensors="pt")
            single_out = model.text_model(input_ids=single["input_ids"], attention_mask=single["attention_mask"])
            alone.append({"text": text, "input_ids": single["input_ids"][0].tolist(),
                          "pooled": floats(single_out.pooler_output[0]),
                          "text_embeds": floats(model.text_projection(single_out.pooler_output)[0])})
        probe = torch.tensor(POOLING_PROBE)
        probe_hidden = model.text_model(input_ids=probe).last_hidden_state  # [1, 5, hidden]
    normalize = lambda x: x / x.norm(p=2, dim=-1, keepdim=True)  # noqa: E731
    assert torch.allclose(normalize(text_embeds), out.text_embeds) and torch.allclose(normalize(image_embeds), out.image_embeds)
    return {
        "input_ids": batch["input_ids"].tolist(),
        "attention_mask": batch["attention_mask"].tolist(),
        "text_pooled": floats(text_pooled),
        "text_embeds": floats(text_embeds),
        "text_embeds_normalized": floats(out.text_embeds),
        "text_last_hidden_state": floats(text_out.last_hidden_state),
        "texts_alone": alone,
        "image_pooled": floats(image_pooled),
        "image_embeds": floats(image_embeds),
        "image_embeds_normalized": floats(out.image_embeds),
        "vision_last_hidden_state": floats(vision_out.last_hidden_state),
        "logits_per_image": floats(out.logits_per_image),
        "logits_per_text": floats(out.logits_per_text),
        "logit_scale": floats(model.logit_scale),
        "logit_scale_exp": floats(model.logit_scale.exp()),
        "pooling_probe": {"input_ids": POOLING_PROBE,
                          "last_hidden_state": floats(probe_hidden),
                          "pooled_argmax_rule": floats(probe_hidden[0, 2]),
                          "pooled_first_eos_49407_rule": floats(probe_hidden[0, 0])},
    }


def pooling_rule(eos_token_id: int) -> str:
    if eos_token_id == 2:
        return "eos_token_id == 2: pooled = last_hidden_state[b, argmax(input_ids[b])] (the old rule; the end token 49407 is the largest id, so this is its first position)"
    return f"eos_token_id == {eos_token_id}: pooled = last_hidden_state[b, first position where input_ids[b] == {eos_token_id}] (0 when there is none)"


def write_fixture(settings: dict, seed: int, out: Path, fp16: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer.from_pretrained(str(VOCAB_DIR))
    model = seeded_model(settings, seed)
    if fp16:
        model = rounded_to_fp16(model, out)
    else:
        model.save_pretrained(out, safe_serialization=True)
    size = settings["vision_config"]["image_size"]
    generator = torch.Generator().manual_seed(seed + 1)
    pixel_values = torch.randn(2, 3, size, size, generator=generator)  # NCHW
    np.save(out / "pixel_values_nchw.npy", pixel_values.numpy().astype("<f4"))
    np.save(out / "pixel_values_nhwc.npy", np.ascontiguousarray(pixel_values.permute(0, 2, 3, 1).numpy()).astype("<f4"))

    variant = json.loads((out / "config.json").read_text())
    variant["text_config"]["eos_token_id"] = 49407
    (out / "config-eos-49407.json").write_text(json.dumps(variant, indent=2, sort_keys=True) + "\n")

    from transformers import CLIPImageProcessorPil
    CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                          image_mean=CLIP_MEAN, image_std=CLIP_STD, resample=3).save_pretrained(out)

    reference32 = run(model, tokenizer, pixel_values, torch.float32)
    reference64 = run(model, tokenizer, pixel_values, torch.float64)
    keys = sorted(load_file(out / "model.safetensors"))
    expected = {
        "about": "Outputs of transformers.CLIPModel (eager attention) with the weights of model.safetensors read as "
                 "float32. Batch: the three texts padded to the longest with <|endoftext|> 49407 (attention_mask 0 on "
                 "padding), images = pixel_values_nchw.npy ([2, 3, H, W]; _nhwc is the same as [2, H, W, 3]). "
                 "text_pooled / image_pooled: the pooled outputs before projection (text: final_layer_norm at the "
                 "pooling position; image: post_layernorm of the class token). text_embeds / image_embeds: after "
                 "text_projection / visual_projection, unnormalized; this is what get_text_features / "
                 "get_image_features return (transformers does not normalize them). *_normalized: L2-normalized, "
                 "as CLIPModel.forward returns text_embeds / image_embeds. logits_per_image = exp(logit_scale) * "
                 "image_embeds_normalized @ text_embeds_normalized.T, [2, 3]. texts_alone: each text unpadded, "
                 "batch of one. pooling_probe: ids without an end token, where the two pooling rules differ; "
                 "config.json uses the argmax rule, config-eos-49407.json the first-49407 rule. *_fp64: the same "
                 "model in float64.",
        "generator": "scripts/make_clip_fixture.py",
        "seed": seed,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "weights_dtype": "F16" if fp16 else "F32",
        "tensor_keys": keys,
        "texts": TEXTS,
        "pooling": {"config.json": pooling_rule(settings["text_config"]["eos_token_id"]),
                    "config-eos-49407.json": pooling_rule(49407)},
        "causal_mask": "text attention is causal (token i sees 0...i) and padding keys are masked",
        **reference32,
        "text_embeds_fp64": reference64["text_embeds"],
        "image_embeds_fp64": reference64["image_embeds"],
        "logits_per_image_fp64": reference64["logits_per_image"],
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    # Error of the float32 reference itself, relative to float64.
    worst = {}
    for name in ("text_embeds", "image_embeds", "logits_per_image"):
        a, b = np.array(reference32[name], dtype=np.float64), np.array(reference64[name], dtype=np.float64)
        worst[name] = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    return {"files": {p.name: p.stat().st_size for p in sorted(out.iterdir())}, "fp32_vs_fp64_max_relative": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", type=Path, metavar="DIR", help="write the random ViT-B/32 reference to DIR instead")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.full_size:
        out = args.full_size.resolve()
        if ROOT in out.parents or out == ROOT:
            sys.exit(f"{out}: the full-size checkpoint (~600 MB) does not belong in the repository")
        report = write_fixture(VIT_B32, seed=32, out=out, fp16=False)
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(VOCAB_DIR / name, out / name)
    else:
        if TINY_OUT.exists():
            shutil.rmtree(TINY_OUT)
        report = write_fixture(TINY, seed=13, out=TINY_OUT, fp16=True)
        total = sum(report["files"].values())
        if total >= 2_000_000:
            sys.exit(f"{TINY_OUT}: {total:,} bytes, over the 2 MB budget")
        out = TINY_OUT
    print(f"wrote {out}:")
    for name, size in report["files"].items():
        print(f"  {name}: {size:,} bytes")
    print(f"  float32 vs float64 reference, max |difference| / max |value|: {report['fp32_vs_fp64_max_relative']}")


if __name__ == "__main__":
    main()
