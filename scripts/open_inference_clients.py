"""The stock Open Inference Protocol clients (tritonclient, kserve) against a running `headtune serve`,
their answers compared with /v1/classify on the same images. Run inside .venv-kserve by
scripts/test_open_inference.py with HEADTUNE_URL=127.0.0.1:PORT:

    HEADTUNE_URL=127.0.0.1:18093 .venv-kserve/bin/python -m unittest scripts/open_inference_clients.py
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import unittest
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.http as triton
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
URL = os.environ.get("HEADTUNE_URL", "127.0.0.1:8080")
JPEGS = ["rocket.jpg", "hubble_deep_field.jpg"]


def v1_classify(images: list[tuple[str, bytes]], head: str = "imagenet") -> list[np.ndarray]:
    """Per image, every class probability /v1/classify gives (by class index)."""
    boundary = "headtune-open-inference-test"
    body = b""
    for name, data in images:
        kind = "image/png" if name.endswith(".png") else "image/jpeg"
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                 f"Content-Type: {kind}\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"http://{URL}/v1/classify?head={head}&top_k=100000", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        results = json.load(response)["results"]
    probabilities = []
    for record in results:
        row = np.full(len(record["predictions"]), np.nan, dtype=np.float32)
        for prediction in record["predictions"]:
            row[prediction["index"]] = prediction["score"]
        probabilities.append(row)
    return probabilities


def jpegs() -> list[tuple[str, bytes]]:
    return [(name, (ROOT / "samples" / name).read_bytes()) for name in JPEGS]


def preprocessed_pngs() -> tuple[list[tuple[str, bytes]], np.ndarray]:
    """Two 256x256 PNGs and their network input [2, 3, 224, 224] as EfficientNet-Lite0 preprocesses them:
    the 224 centre crop of 256 (the 0.875 crop, no resampling at this size) and (x - 127) / 128."""
    files, tensors = [], []
    for name in ["chelsea.png", "rocket.jpg"]:
        image = Image.open(ROOT / "samples" / name).convert("RGB").resize((256, 256), Image.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        files.append((name.rsplit(".", 1)[0] + "-256.png", buffer.getvalue()))
        pixels = np.asarray(image, dtype=np.float32)[16:240, 16:240]
        tensors.append(((pixels - 127) / 128).transpose(2, 0, 1))
    return files, np.stack(tensors).astype(np.float32)


class TritonClient(unittest.TestCase):
    client: triton.InferenceServerClient

    @classmethod
    def setUpClass(cls):
        cls.client = triton.InferenceServerClient(URL)

    def test_health_and_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        self.assertTrue(self.client.is_model_ready("imagenet"))
        self.assertFalse(self.client.is_model_ready("imagenet", model_version="2"))
        self.assertIn("binary_tensor_data", self.client.get_server_metadata()["extensions"])
        metadata = self.client.get_model_metadata("imagenet")
        self.assertEqual([(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]],
                         [("image", "BYTES", [-1]), ("pixels", "FP32", [-1, 3, 224, 224])])
        self.assertEqual([(o["name"], o["shape"]) for o in metadata["outputs"]],
                         [("probabilities", [-1, 1000]), ("features", [-1, 1280])])

    def test_jpeg_bytes_with_and_without_binary_data(self):
        files = jpegs()
        expected = v1_classify(files)
        for binary in (True, False):
            with self.subTest(binary_data=binary):
                image = triton.InferInput("image", [len(files)], "BYTES")
                # JSON cannot carry raw bytes: without binary data each element is the file as base64 text.
                elements = [data if binary else base64.b64encode(data) for _, data in files]
                image.set_data_from_numpy(np.array(elements, dtype=np.object_), binary_data=binary)
                outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary),
                           triton.InferRequestedOutput("features", binary_data=binary)]
                result = self.client.infer("imagenet", [image], outputs=outputs)
                probabilities = result.as_numpy("probabilities")
                self.assertEqual(probabilities.shape, (2, 1000))
                for got, want in zip(probabilities, expected):
                    np.testing.assert_allclose(got, want, atol=1e-5)
                self.assertEqual(result.as_numpy("features").shape, (2, 1280))
        # Without `outputs` the client asks for every output as binary data.
        image = triton.InferInput("image", [len(files)], "BYTES")
        image.set_data_from_numpy(np.array([data for _, data in files], dtype=np.object_))
        result = self.client.infer("imagenet", [image])
        np.testing.assert_allclose(result.as_numpy("probabilities")[1], expected[1], atol=1e-5)

    def test_classification_extension(self):
        files = jpegs()
        expected = v1_classify(files)
        image = triton.InferInput("image", [len(files)], "BYTES")
        image.set_data_from_numpy(np.array([data for _, data in files], dtype=np.object_))
        result = self.client.infer("imagenet", [image], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)])
        top = result.as_numpy("probabilities")
        self.assertEqual(top.shape, (2, 3))
        for row, want in zip(top, expected):
            indices = [int(entry.decode().split(":")[1]) for entry in row]
            self.assertEqual(indices, list(np.argsort(-want)[:3]))
        self.assertTrue(top[0][0].decode().endswith(":missile"))

    def test_fp32_pixels_with_and_without_binary_data(self):
        files, tensor = preprocessed_pngs()
        expected = v1_classify(files)
        for binary in (True, False):
            with self.subTest(binary_data=binary):
                pixels = triton.InferInput("pixels", list(tensor.shape), "FP32")
                pixels.set_data_from_numpy(tensor, binary_data=binary)
                result = self.client.infer("imagenet", [pixels],
                                           outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary)])
                for got, want in zip(result.as_numpy("probabilities"), expected):
                    np.testing.assert_allclose(got, want, atol=1e-5)

    def test_errors_reach_the_client(self):
        image = triton.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([b"<html>"], dtype=np.object_))
        with self.assertRaises(triton.InferenceServerException) as raised:
            self.client.infer("imagenet", [image])
        self.assertEqual(raised.exception.message(), "image[0]: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 3C 68 74 6D)")
        self.assertEqual(raised.exception.status(), "422")
        with self.assertRaises(triton.InferenceServerException) as raised:
            self.client.get_model_metadata("nope")
        self.assertIn("no head named 'nope'", raised.exception.message())


class KServeClient(unittest.TestCase):
    def test_rest_client_v2(self):
        from kserve import InferInput, InferRequest, InferenceRESTClient, RESTConfig

        async def run():
            client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
            base = f"http://{URL}"
            try:
                self.assertTrue(await client.is_server_live(base))
                self.assertTrue(await client.is_server_ready(base))
                self.assertTrue(await client.is_model_ready(base, "imagenet"))
                files = jpegs()
                image = InferInput("image", [len(files)], "BYTES")
                image.set_data_from_numpy(np.array([data for _, data in files], dtype=np.object_), binary_data=True)
                answer = await client.infer(base, InferRequest(model_name="imagenet", infer_inputs=[image]), model_name="imagenet")
                by_name = {output.name: output for output in answer.outputs}
                for got, want in zip(by_name["probabilities"].as_numpy(), v1_classify(files)):
                    np.testing.assert_allclose(got, want, atol=1e-5)
                pngs, tensor = preprocessed_pngs()
                pixels = InferInput("pixels", list(tensor.shape), "FP32")
                pixels.set_data_from_numpy(tensor, binary_data=False)
                answer = await client.infer(base, InferRequest(model_name="imagenet", infer_inputs=[pixels]), model_name="imagenet")
                by_name = {output.name: output for output in answer.outputs}
                for got, want in zip(by_name["probabilities"].as_numpy(), v1_classify(pngs)):
                    np.testing.assert_allclose(got, want, atol=1e-5)
            finally:
                await client.close()

        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
