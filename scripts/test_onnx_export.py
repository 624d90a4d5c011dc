"""`headtune export` models run in ONNX Runtime (PyPI) and answer what `headtune classify` answers, on
real photos (samples/, and the shared imagenette images when ../shared/datasets is there):

- the bundled ImageNet classifier (`export --imagenet`) against `classify --imagenet --top-k 1000`;
- a linear head with test-time flip (the flip averaged inside the graph), softened by a strong L2 so
  its probabilities are not all 0 or 1;
- an mlp head on head+stages features with the last block fine-tuned (`--unfreeze 1`);
- heads on CLIP's image tower (the tiny seeded CLIP fixture, with quick_gelu and with exact gelu);
- the inputs come from `headtune preprocess`, a corrupt file among them gets an error record and no row;
- the model passes onnx.checker and carries the labels and the preprocessing in its metadata.

Probabilities and pooled features (O(1)) must agree within 1e-4, logits within 1e-4 of their largest
magnitude (a saturated head's logits reach the hundreds; they check the stages and the mlp path).
Each case prints its agreement figures (BENCHMARKS.md quotes them). ONNX Runtime and onnx live in
.venv-onnx (scripts/requirements-onnx.txt); skipped, saying why, when PyPI cannot be reached. The
binary: $HEADTUNE, else as scripts/test_open_inference.py finds it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_open_inference import ensure_venv, server_binary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-onnx"
REQUIREMENTS = ROOT / "scripts" / "requirements-onnx.txt"
IMAGENETTE = ROOT.parent / "shared" / "datasets" / "imagenette" / "dev"
TINY_CLIP = ROOT / "Tests" / "ModelsTests" / "Resources" / "tiny-clip"
TOLERANCE = 1e-4

# Runs in .venv-onnx: the exported model on the preprocessed inputs, compared with classify's records.
COMPARE = r"""
import json, sys
import numpy as np, onnx, onnxruntime as ort
model_path, inputs_path, records_path = sys.argv[1:4]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
metadata = {p.key: p.value for p in model.metadata_props}
x = np.load(inputs_path)
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
probabilities, features, logits = session.run(["probabilities", "features", "logits"], {"pixels": x})
records = [json.loads(line) for line in open(records_path)]
records = [r for r in records if "error" not in r]
expected = np.zeros_like(probabilities)
for i, r in enumerate(records):
    for p in r["predictions"]:
        expected[i, p["index"]] = p["score"]
embeddings = np.array([r["embedding"] for r in records], dtype=np.float32)
expected_logits = np.array([r["logits"] for r in records], dtype=np.float32)
print(json.dumps({
    "images": len(records), "rows": int(x.shape[0]),
    "probabilities_max_abs": float(np.abs(probabilities - expected).max()),
    "features_max_abs": float(np.abs(features - embeddings).max()),
    "features_scale": float(np.abs(embeddings).max()),
    "logits_max_abs": float(np.abs(logits - expected_logits).max()),
    "logits_scale": float(np.abs(expected_logits).max()),
    "top1_agree": int((probabilities.argmax(1) == expected.argmax(1)).sum()),
    "min_top1_probability": float(expected.max(1).min()),
    "labels": json.loads(metadata["headtune.labels"]),
    "preprocessing": json.loads(metadata["headtune.preprocessing"]),
    "opset": int(model.opset_import[0].version),
}))
"""


class ONNXExportAgreesWithClassify(unittest.TestCase):
    binary: Path
    work: Path

    @classmethod
    def setUpClass(cls):
        missing = [p for p in ("weights/efficientnet-lite0.safetensors", "samples/chelsea.png") if not (ROOT / p).exists()]
        if missing:
            raise unittest.SkipTest(f"missing {', '.join(missing)} (run `make assets`)")
        ensure_venv(VENV, REQUIREMENTS, "the ONNX Runtime checks of `headtune export`")
        cls.binary = server_binary()
        cls.work = Path(tempfile.mkdtemp(prefix="headtune-onnx-"))
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_texture_tiles.py"), str(cls.work / "textures")],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def headtune(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.binary), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=1200)
        if check and result.returncode != 0:
            self.fail(f"headtune {' '.join(arguments)} exited {result.returncode}:\n{result.stderr}")
        return result

    def agreement(self, name: str, classifier: list[str], images: list[str]) -> dict:
        """Exports `classifier`, preprocesses and classifies `images`, runs the model; the figures."""
        model, inputs, records = (self.work / f"{name}{suffix}" for suffix in (".onnx", ".npy", ".jsonl"))
        export = json.loads(self.headtune("export", *classifier, "--out", str(model)).stdout)
        self.assertEqual(export["bytes"], model.stat().st_size)
        self.assertEqual([o["name"] for o in export["outputs"]], ["probabilities", "features", "logits"])
        # preprocess takes the head (for its geometry) and the model, not --imagenet.
        options = classifier if classifier[0] == "--head" else classifier[1:]
        rows = [json.loads(line) for line in self.headtune("preprocess", *options, "--out", str(inputs), *images).stdout.splitlines()]
        self.assertEqual([r["row"] for r in rows], list(range(len(images))))
        self.headtune("classify", *classifier, "--top-k", "1000", "--embeddings", "--logits", "--format", "jsonl", "-o", str(records), *images)
        result = subprocess.run([str(VENV / "bin" / "python"), "-c", COMPARE, str(model), str(inputs), str(records)],
                                capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        figures = json.loads(result.stdout)
        print(f"\n[onnx-export] {name}: {figures['images']} images, max |probability difference| "
              f"{figures['probabilities_max_abs']:.2e}, max |feature difference| {figures['features_max_abs']:.2e} "
              f"(features up to {figures['features_scale']:.1f}), max |logit difference| {figures['logits_max_abs']:.2e} "
              f"(logits up to {figures['logits_scale']:.1f}), top-1 agrees on {figures['top1_agree']}, "
              f"lowest top-1 probability {figures['min_top1_probability']:.3f}", file=sys.stderr)
        self.assertEqual(figures["images"], len(images))
        self.assertLess(figures["probabilities_max_abs"], TOLERANCE)
        self.assertLess(figures["features_max_abs"], TOLERANCE)
        self.assertLess(figures["logits_max_abs"], TOLERANCE * max(1.0, figures["logits_scale"]))
        self.assertEqual(figures["top1_agree"], len(images))
        return figures

    def sample_photos(self) -> list[str]:
        return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "samples").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))

    def texture_tests(self) -> list[str]:
        return sorted(str(p) for p in (self.work / "textures" / "test").rglob("*.png"))

    def test_imagenet_classifier(self):
        figures = self.agreement("imagenet", ["--imagenet"], self.sample_photos())
        self.assertEqual(len(figures["labels"]), 1000)
        self.assertEqual(figures["labels"][0], "tench")
        self.assertEqual(figures["preprocessing"]["geometry"], "center-crop")
        self.assertEqual(figures["preprocessing"]["normalization"]["offset"], 127)
        self.assertFalse(figures["preprocessing"]["test_time_flip_in_graph"])
        self.assertEqual(figures["opset"], 13)

    @unittest.skipUnless(IMAGENETTE.is_dir(), f"{IMAGENETTE} is absent (the shared datasets)")
    def test_imagenet_classifier_on_imagenette(self):
        photos = sorted(str(p) for p in IMAGENETTE.rglob("*.JPEG"))[::10][:100]
        self.agreement("imagenette", ["--imagenet"], photos)

    def test_linear_head_with_test_time_flip(self):
        head = self.work / "linear.head"
        self.headtune("train", str(self.work / "textures" / "train"), "--out", str(head), "--no-cache", "--l2", "3000",
                      "--test-time-flip")
        figures = self.agreement("linear", ["--head", str(head)], self.texture_tests())
        self.assertEqual(figures["labels"], ["brick", "grass", "gravel"])
        self.assertTrue(figures["preprocessing"]["test_time_flip_in_graph"])
        # Soft enough that the comparison sees more than saturated 0s and 1s.
        self.assertLess(figures["min_top1_probability"], 0.99)

    def test_mlp_head_on_stages_with_a_tuned_block(self):
        head = self.work / "tuned.head"
        self.headtune("train", str(self.work / "textures" / "train"), "--out", str(head), "--no-cache", "--head", "mlp",
                      "--features", "head+stages", "--unfreeze", "1", "--fine-tune-epochs", "2", "--epochs", "20",
                      "--policy", "resize", "--test-time-flip")
        figures = self.agreement("tuned", ["--head", str(head)], self.texture_tests())
        self.assertEqual(figures["preprocessing"]["geometry"], "resize")

    def test_heads_on_clip_image_towers(self):
        gelu = self.work / "tiny-clip-gelu"
        shutil.copytree(TINY_CLIP, gelu)
        config = json.loads((gelu / "config.json").read_text())
        self.assertEqual(config["vision_config"]["hidden_act"], "quick_gelu")
        config["vision_config"]["hidden_act"] = "gelu"
        (gelu / "config.json").write_text(json.dumps(config))
        for name, model in (("clip-quick-gelu", TINY_CLIP), ("clip-gelu", gelu)):
            head = self.work / f"{name}.head"
            self.headtune("train", str(self.work / "textures" / "train"), "--model", str(model), "--out", str(head), "--no-cache",
                          "--l2", "10")
            figures = self.agreement(name, ["--head", str(head), "--model", str(model)], self.texture_tests())
            self.assertEqual(figures["preprocessing"]["input_size"], 32)
            self.assertEqual(len(figures["preprocessing"]["normalization"]["mean"]), 3)
        refused = self.headtune("export", "--imagenet", "--model", str(TINY_CLIP), "--out", str(self.work / "x.onnx"), check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("no pretrained classifier", refused.stderr)

    def test_preprocess_reports_a_bad_file_and_goes_on(self):
        bad = self.work / "not-an-image.jpg"
        bad.write_bytes(b"<html>not a photo</html>")
        photos = self.sample_photos()[:2]
        out = self.work / "partial.npy"
        result = self.headtune("preprocess", "--out", str(out), photos[0], str(bad), photos[1], check=False)
        self.assertEqual(result.returncode, 1)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r.get("row") for r in records], [0, None, 1])
        self.assertIn("not-an-image.jpg", records[1]["error"])
        header = out.read_bytes()[:128].decode("latin-1")
        self.assertIn("'shape': (2, 3, 224, 224)", header)
        self.assertEqual(out.stat().st_size, 128 + 2 * 3 * 224 * 224 * 4)

    def test_export_refuses_what_it_cannot_write(self):
        result = self.headtune("export", "--imagenet", "--out", str(self.work / "no" / "dir" / "x.onnx"), check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no such directory", result.stderr)
        photo = self.sample_photos()[0]
        result = self.headtune("export", "--head", photo, "--out", str(self.work / "x.onnx"), check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("not a head file", result.stderr)


if __name__ == "__main__":
    unittest.main()
