#!/usr/bin/env python3
"""CLIP preprocessing goldens: Tests/ImagingTests/Resources/clip-preprocess/.

    scripts/check-clip goldens          # or: .venv-clip/bin/python scripts/make_clip_preprocess.py

openai/clip-vit-base-patch32's CLIPImageProcessor settings: resize the shortest edge to 224 (bicubic),
centre-crop 224x224, rescale by 1/255, normalize with CLIP's mean/std. The reference is transformers'
PIL backend (`CLIPImageProcessorPil` in 5.x; it is what `CLIPImageProcessor` was in 4.x and resizes with
Pillow, as OpenAI's own preprocessing does), on the bundled samples (python3 scripts/assets.py samples):
  <name>_crop224_u8_hwc.npy   do_rescale=False, do_normalize=False: the 224x224x3 uint8 crop
  rocket_pixel_values_f32_hwc.npy   everything on, float32, HWC (transposed from transformers' CHW)
  clip_preprocess.json        per image: source size, the resize target transformers computed, the crop
                              offsets, and how far two other pipelines are from this one: transformers 5's
                              default CLIPImageProcessor (torchvision backend) and OpenAI's
                              torchvision.transforms pipeline (Resize + CenterCrop on the PIL image)
The fourth image, rocket_rot90, is rocket.jpg rotated by PIL's Image.ROTATE_90 (counter-clockwise: the
top row becomes the left column, 427 wide and 640 tall), the portrait case no sample has.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

import transformers
from transformers import CLIPImageProcessor, CLIPImageProcessorPil
from transformers.image_transforms import get_resize_output_image_size

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUT = ROOT / "Tests" / "ImagingTests" / "Resources" / "clip-preprocess"
SIZE = 224
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
SETTINGS = dict(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}, resample=3,
                image_mean=MEAN, image_std=STD, do_convert_rgb=True)
IMAGES = [("chelsea", "chelsea.png", False), ("rocket", "rocket.jpg", False), ("rocket_rot90", "rocket.jpg", True),
          ("astronaut", "astronaut.png", False)]
FULL_PIPELINE = "rocket"


def load(file: str, rotate: bool) -> Image.Image:
    image = Image.open(SAMPLES / file).convert("RGB")
    return image.transpose(Image.Transpose.ROTATE_90) if rotate else image


def hwc(pixel_values) -> np.ndarray:
    array = np.asarray(pixel_values)[0]  # [3, H, W]
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def as_uint8(array: np.ndarray, what: str) -> np.ndarray:
    assert np.all(array == np.round(array)) and array.min() >= 0 and array.max() <= 255, what
    return array.astype(np.uint8)


def openai_crop(image: Image.Image) -> np.ndarray:
    """OpenAI CLIP's `_transform`: Resize(224, BICUBIC) and CenterCrop(224) from torchvision on the PIL image."""
    from torchvision import transforms
    pipeline = transforms.Compose([transforms.Resize(SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
                                   transforms.CenterCrop(SIZE)])
    return np.asarray(pipeline(image))


def difference(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "values_differing": int((d > 0).sum())}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pil = CLIPImageProcessorPil(**SETTINGS)
    raw_pil = CLIPImageProcessorPil(**SETTINGS, do_rescale=False, do_normalize=False)
    raw_torchvision = CLIPImageProcessor(**SETTINGS, do_rescale=False, do_normalize=False)
    entries = []
    for name, file, rotate in IMAGES:
        image = load(file, rotate)
        width, height = image.size
        target_h, target_w = get_resize_output_image_size(np.asarray(image), size=SIZE, default_to_square=False,
                                                          input_data_format="channels_last")
        top, left = (target_h - SIZE) // 2, (target_w - SIZE) // 2
        crop = as_uint8(hwc(raw_pil(image, return_tensors="np")["pixel_values"]), name)
        np.save(OUT / f"{name}_crop224_u8_hwc.npy", crop)
        torchvision_crop = as_uint8(hwc(raw_torchvision(image, return_tensors="pt")["pixel_values"].numpy()), name)
        # The same resize by hand, to confirm the target size and offsets above are what the processor did.
        resized = np.asarray(image.resize((target_w, target_h), Image.Resampling.BICUBIC))
        assert np.array_equal(resized[top:top + SIZE, left:left + SIZE], crop), name
        openai = openai_crop(image)
        openai_offsets = (int(round((target_h - SIZE) / 2.0)), int(round((target_w - SIZE) / 2.0)))
        assert np.array_equal(resized[openai_offsets[0]:openai_offsets[0] + SIZE, openai_offsets[1]:openai_offsets[1] + SIZE], openai), name
        entry = {
            "name": name, "sample": file, "rotated_90_counter_clockwise": rotate,
            "source_width": width, "source_height": height,
            "source_rgb_sha256": hashlib.sha256(np.asarray(image).tobytes()).hexdigest(),
            "resize_height": target_h, "resize_width": target_w,
            "resize_long_side_exact": SIZE * max(width, height) / min(width, height),
            "crop_top": top, "crop_left": left,
            "crop": f"{name}_crop224_u8_hwc.npy",
            "transformers_torchvision_backend_vs_this": difference(torchvision_crop, crop),
            "openai_torchvision_transforms": {"crop_top": openai_offsets[0], "crop_left": openai_offsets[1],
                                              "vs_this": difference(openai, crop)},
        }
        if name == FULL_PIPELINE:
            values = hwc(pil(image, return_tensors="np")["pixel_values"]).astype("<f4")
            np.save(OUT / f"{name}_pixel_values_f32_hwc.npy", values)
            expected = ((crop.astype(np.float64) * (1 / 255)).astype(np.float32) - np.float32(MEAN)) / np.float32(STD)
            assert np.array_equal(values, expected.astype(np.float32)), "normalize formula"
            entry["pixel_values"] = f"{name}_pixel_values_f32_hwc.npy"
        entries.append(entry)

    golden = {
        "about": "transformers CLIPImageProcessorPil (openai/clip-vit-base-patch32 settings) on the bundled samples, "
                 "written by scripts/make_clip_preprocess.py. Resize: shortest edge -> 224 with Pillow's bicubic "
                 "(antialiased; Image.resize((resize_width, resize_height), BICUBIC)), the other edge "
                 "int(224 * long / short), i.e. floored, never rounded. Crop: top = (resize_height - 224) // 2, "
                 "left = (resize_width - 224) // 2 (floor division: an odd margin leaves the extra row/column at "
                 "the bottom/right). pixel_values (float32, computed in this order): x = float32(u8 * (1/255) in "
                 "float64); (x - float32(mean)) / float32(std), per channel. Also listed: how far transformers 5's "
                 "default torchvision-backed CLIPImageProcessor and OpenAI's torchvision.transforms pipeline "
                 "(whose CenterCrop rounds the offset half to even) are from these crops.",
        "versions": {"transformers": transformers.__version__, "Pillow": PIL.__version__, "numpy": np.__version__,
                     "torchvision": __import__("torchvision").__version__},
        "size": SIZE, "crop_size": SIZE, "resample": "bicubic (PIL 3)", "rescale_factor": 1 / 255,
        "image_mean": MEAN, "image_std": STD,
        "images": entries,
    }
    (OUT / "clip_preprocess.json").write_text(json.dumps(golden, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    assert total < 1_500_000, f"{OUT}: {total:,} bytes, over the 1.5 MB budget"
    print(f"wrote {OUT.relative_to(ROOT)} ({total:,} bytes)")
    for entry in entries:
        print(f"  {entry['name']}: {entry['source_width']}x{entry['source_height']} -> {entry['resize_width']}x{entry['resize_height']}"
              f" (exact long side {entry['resize_long_side_exact']:.3f}), crop top {entry['crop_top']} left {entry['crop_left']};"
              f" torchvision backend {entry['transformers_torchvision_backend_vs_this']};"
              f" openai offsets {entry['openai_torchvision_transforms']['crop_top']},{entry['openai_torchvision_transforms']['crop_left']}"
              f" {entry['openai_torchvision_transforms']['vs_this']}")


if __name__ == "__main__":
    main()
