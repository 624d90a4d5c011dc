"""What a new user meets at the command line, run against the headtune binary with the bundled weights
and samples (issue 19): the progress bar under a pseudo-terminal, plain progress lines in a log, linked
folders, argument mistakes, output formats from the extension, head files checked and inspected,
evaluate's unknown classes, and serve on a taken port.

The binary: $HEADTUNE, else .build/release/headtune when built, else the debug build (see
test_open_inference.server_binary). Skipped, saying why, when the weights or samples are missing.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from test_open_inference import server_binary

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(str(p) for p in (ROOT / "samples").glob("*") if p.suffix.lower() in (".jpg", ".png"))


def visible_lines(raw: str) -> list[str]:
    """What a terminal shows of each line: a carriage return goes back to the start, ESC[K erases to the end."""
    lines = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        shown = line.rsplit("\r", 1)[-1]
        lines.append(shown.replace("\x1b[K", ""))
    return lines


def run_in_pty(argv: list[str], timeout: float = 600) -> tuple[int, str]:
    """Runs argv with stdout and stderr on one pseudo-terminal, as in an interactive shell; returns (status, output)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, cwd=ROOT)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(controller)
    status = process.wait(timeout=30)
    return status, b"".join(chunks).decode("utf-8", "replace")


class CommandLine(unittest.TestCase):
    binary: Path
    work: Path

    @classmethod
    def setUpClass(cls):
        if not (ROOT / "weights").is_dir() or len(SAMPLES) < 6:
            raise unittest.SkipTest("needs weights/ and samples/ (make assets)")
        cls.binary = server_binary()
        cls.work = Path(tempfile.mkdtemp(prefix="headtune-cli-"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def headtune(self, *args: str, timeout: float = 900, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.binary), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=stdin)

    # Progress

    def test_progress_bar_is_never_on_a_record_line_in_a_terminal(self):
        inputs = SAMPLES * 3
        status, output = run_in_pty([str(self.binary), "classify", "--imagenet", "--format", "table", "--batch-size", "1",
                                     "--top-k", "1", *inputs])
        self.assertEqual(status, 0, output[-2000:])
        self.assertIn("ETA", output, "the bar was drawn")
        lines = visible_lines(output)
        records = [line for line in lines if any(line.startswith(path) or path in line for path in inputs)]
        self.assertEqual(len(records), len(inputs), lines)
        glued = [line for line in records if "ETA" in line or "images/s" in line]
        self.assertEqual(glued, [], "progress bar text on a record line")

    def test_forced_progress_into_a_file_is_plain_lines(self):
        result = self.headtune("classify", "--imagenet", "--progress", "--format", "jsonl", *SAMPLES[:3])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("\x1b", result.stderr)
        self.assertNotIn("\r", result.stderr)
        self.assertIn("headtune: 3/3 images", result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 3)

    # Inputs

    def test_linked_folders_are_followed_and_skipped_files_counted(self):
        linkdir = self.work / "linkdir"
        (self.work / "real").mkdir(exist_ok=True)
        shutil.copy(SAMPLES[0], self.work / "real" / Path(SAMPLES[0]).name)
        linkdir.mkdir(exist_ok=True)
        for name, target in [("linked", self.work / "real"), ("broken.jpg", self.work / "gone.jpg"), ("loop", linkdir)]:
            if not (linkdir / name).is_symlink():
                (linkdir / name).symlink_to(target)
        (linkdir / "photo.avif").write_bytes(b"\0\0\0\x18ftypavif")
        result = self.headtune("classify", "--imagenet", "--format", "jsonl", str(linkdir))
        self.assertEqual(result.returncode, 0, result.stderr)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r["path"] for r in records], [f"{linkdir}/linked/{Path(SAMPLES[0]).name}"])
        self.assertIn("skipped 3 file(s)", result.stderr)
        self.assertIn(f"a broken symbolic link ({linkdir}/broken.jpg)", result.stderr)
        self.assertIn(f"in an image format headtune does not decode (convert to JPEG or PNG) ({linkdir}/photo.avif)", result.stderr)
        self.assertIn("a symbolic link back into a folder being walked", result.stderr)

    # Arguments and messages

    def test_argument_mistakes_get_reasons_and_suggestions(self):
        negative = self.headtune("classify", "--imagenet", "--top-k", "-1", SAMPLES[0])
        self.assertNotEqual(negative.returncode, 0)
        self.assertIn("--top-k must be at least 1 (got -1)", negative.stderr)
        typo = self.headtune("trian", "data/")
        self.assertNotEqual(typo.returncode, 0)
        self.assertIn("unknown command 'trian'; did you mean 'train'?", typo.stderr)
        unknown = self.headtune("frobnicate")
        self.assertIn("unknown command 'frobnicate'; the commands are classify, embed, train", unknown.stderr)

    def test_decode_memory_sizes(self):
        for size, message in [("0", "--decode-memory must be at least 1m"), ("512k", "--decode-memory must be at least 1m"),
                              ("1.5g", "'1.5g' is invalid for '--decode-memory"), ("64q", "'64q' is invalid for '--decode-memory")]:
            refused = self.headtune("classify", "--imagenet", "--decode-memory", size, SAMPLES[0])
            self.assertNotEqual(refused.returncode, 0, size)
            self.assertIn(message, refused.stderr, size)
        for size in ["64m", "64MiB", "1g", str(8 << 20)]:
            accepted = self.headtune("classify", "--imagenet", "--decode-memory", size, "--format", "jsonl", SAMPLES[0])
            self.assertEqual(accepted.returncode, 0, accepted.stderr)
            self.assertEqual(json.loads(accepted.stdout)["path"], SAMPLES[0])

    def test_every_command_has_examples_in_its_help(self):
        commands = ["classify", "embed", "train", "evaluate", "inspect", "zero-shot", "match", "index", "search", "align",
                    "export", "preprocess", "serve", "healthcheck", "bench backbone", "bench text", "info", "models", "quantize"]
        for command in commands:
            shown = self.headtune("help", *command.split())
            self.assertEqual(shown.returncode, 0, command)
            self.assertRegex(shown.stdout, r"Examples?:\n  headtune |Examples?.*:\n  headtune ", command)

    def test_quantize_then_precision_int8(self):
        calibration = self.work / "calibration"
        calibration.mkdir(exist_ok=True)
        for n, sample in enumerate(SAMPLES * 2):
            shutil.copy(sample, calibration / f"{n:02d}{Path(sample).suffix}")
        (calibration / "broken.jpg").write_bytes(b"not a jpeg")
        int8 = self.work / "lite0.int8.safetensors"
        made = self.headtune("quantize", "--calibration", str(calibration), "--out", str(int8))
        self.assertEqual(made.returncode, 0, made.stderr)
        report = json.loads(made.stdout)
        self.assertEqual((report["images"], report["skipped"], report["method"], len(report["layers"])),
                         (2 * len(SAMPLES), 1, "mse", 34))
        self.assertIn(f"{calibration}/broken.jpg: skipped", made.stderr)
        self.assertIn("use it with --precision int8", made.stderr)
        classified = self.headtune("classify", "--imagenet", "--format", "jsonl", "--precision", "int8", "--quantized", str(int8),
                                   *SAMPLES)
        self.assertEqual(classified.returncode, 0, classified.stderr)
        self.assertEqual(len(classified.stdout.splitlines()), len(SAMPLES))
        if "avx512_vnni" not in Path("/proc/cpuinfo").read_text():
            self.assertIn("no AVX-512 VNNI", classified.stderr)
        bench = self.headtune("bench", "backbone", "--seconds", "0.2", "--warmup", "0", "--format", "json",
                              "--precision", "int8", "--quantized", str(int8))
        self.assertEqual(bench.returncode, 0, bench.stderr)
        expected = "int8" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "fp32"
        self.assertEqual(json.loads(bench.stdout)["precision"], expected)
        for args, message in [(["classify", "--imagenet", "--quantized", str(int8), SAMPLES[0]], "--quantized needs --precision int8"),
                              (["classify", "--imagenet", "--precision", "int8", "--quantized", str(self.work / "none.safetensors"), SAMPLES[0]],
                               "make them with `headtune quantize --calibration DIR`"),
                              (["bench", "text", "--precision", "int8"], "the text encoder runs fp32"),
                              (["quantize", "--calibration", str(calibration), "--images", "3"], "--images must be at least 8")]:
            refused = self.headtune(*args)
            self.assertNotEqual(refused.returncode, 0, args)
            self.assertIn(message, refused.stderr, args)

    def test_version(self):
        result = self.headtune("--version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout.strip(), r"^\d+\.\d+\.\d+")

    def test_output_format_follows_the_extension(self):
        out = self.work / "out.csv"
        result = self.headtune("classify", "--imagenet", "--top-k", "2", "-o", str(out), SAMPLES[0])
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = out.read_text().splitlines()
        self.assertEqual(lines[0], "path,rank,index,label,score,error")
        self.assertEqual(len(lines), 3)
        jsonl = self.work / "out.jsonl"
        self.assertEqual(self.headtune("classify", "--imagenet", "-o", str(jsonl), SAMPLES[0]).returncode, 0)
        self.assertIn("predictions", json.loads(jsonl.read_text().splitlines()[0]))

    def test_an_image_given_as_a_head_is_named(self):
        result = self.headtune("classify", "--head", SAMPLES[-1], SAMPLES[0])
        self.assertNotEqual(result.returncode, 0)
        name = SAMPLES[-1]
        kind = "a JPEG image" if name.endswith(".jpg") else "a PNG image"
        self.assertIn(f"{name} is {kind}, not a head file", result.stderr)

    def test_output_paths_are_checked_before_any_work(self):
        started = time.monotonic()
        result = self.headtune("train", str(ROOT / "samples"), "--out", "nodir/x.head")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("nodir/x.head", result.stderr)
        self.assertIn("no such directory nodir", result.stderr)
        report = self.headtune("train", str(ROOT / "samples"), "--out", str(self.work / "x.head"), "--report", "nodir/r.html")
        self.assertIn("no such directory nodir", report.stderr)
        self.assertLess(time.monotonic() - started, 60, "failed before extracting features")

    def test_serve_on_a_taken_port_says_so_before_ready(self):
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            result = self.headtune("serve", "--port", str(port), "--no-text-encoder", timeout=120)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"port {port} is in use on 127.0.0.1; pick another with --port", result.stderr)
        self.assertNotIn("ready", result.stderr)

    # A head: train, inspect, evaluate with classes the head lacks

    def test_head_inspect_and_evaluate_with_unknown_classes(self):
        data = self.work / "three"
        for index, label in enumerate(["alpha", "beta", "gamma"]):
            (data / label).mkdir(parents=True, exist_ok=True)
            for sample in SAMPLES[2 * index:2 * index + 2]:
                shutil.copy(sample, data / label / Path(sample).name)
        head = self.work / "three.head"
        trained = self.headtune("train", str(data), "--out", str(head), "--validation-split", "0", "--l2", "0.01", "--no-cache")
        self.assertEqual(trained.returncode, 0, trained.stderr)

        inspected = self.headtune("inspect", str(head), "--format", "json")
        self.assertEqual(inspected.returncode, 0, inspected.stderr)
        summary = json.loads(inspected.stdout)
        self.assertEqual(summary["labels"], ["alpha", "beta", "gamma"])
        self.assertEqual(summary["feature_set"], "head+stages")
        self.assertEqual(summary["preprocessing"]["policy"], "resize")
        self.assertIsNone(summary["metrics"])
        self.assertEqual(summary["dataset"]["trainImages"], 6)
        self.assertEqual(len(summary["sha256"]), 64)
        self.assertIn("unknown_flag", summary)
        text = self.headtune("inspect", str(head))
        self.assertIn("classes:        3: alpha, beta, gamma", text.stdout)

        test = self.work / "three-test"
        for label, sample in [("alpha", SAMPLES[0]), ("Beta", SAMPLES[2])]:
            (test / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(sample, test / label / Path(sample).name)
        stopped = self.headtune("evaluate", "--head", str(head), str(test), "--no-cache")
        self.assertNotEqual(stopped.returncode, 0)
        self.assertIn(f"folder {test}/Beta/ (1 image(s)) is not one of the head's classes; did you mean \"beta\"?", stopped.stderr)
        self.assertIn("--ignore-unknown-labels", stopped.stderr)

        plots = self.work / "plots"
        ignored = self.headtune("evaluate", "--head", str(head), str(test), "--no-cache", "--ignore-unknown-labels",
                                "--plots", str(plots))
        self.assertTrue((plots / "confusion.svg").read_text().startswith("<svg"), ignored.stderr)
        self.assertEqual(ignored.returncode, 0, ignored.stderr)
        self.assertIn('left out (--ignore-unknown-labels) 1 image(s) of "Beta"', ignored.stderr)
        rows = {line.split()[0]: line.split()[1:] for line in ignored.stdout.splitlines() if line.startswith("  ") and len(line.split()) == 5}
        self.assertEqual(rows["gamma"][1:3], ["n/a", "n/a"], ignored.stdout)
        self.assertEqual(rows["alpha"][3], "1")

        # The unknown flag measured on a folder known to be out of scope, with the other options.
        outside = self.work / "outside"
        outside.mkdir(exist_ok=True)
        for sample in SAMPLES[6:]:
            shutil.copy(sample, outside / Path(sample).name)
        measured = self.headtune("evaluate", "--head", str(head), str(test), "--no-cache", "--ignore-unknown-labels",
                                 "--ood", str(outside), "--format", "json", "--ood-scores", str(self.work / "scores.jsonl"))
        self.assertEqual(measured.returncode, 0, measured.stderr)
        report = json.loads(measured.stdout)
        self.assertIn("accuracy", report)
        ood = report["out_of_distribution"]
        self.assertEqual(ood["in_distribution_images"], 1)
        self.assertEqual(ood["out_of_distribution_images"], len(SAMPLES[6:]))
        self.assertEqual(sum(row["default"] for row in ood["scores"]), 1, ood)
        for row in ood["scores"]:
            self.assertTrue(0 <= row["auroc"] <= 1 and 0 <= row["catch_rate"] <= 1, row)
        lines = [json.loads(line) for line in (self.work / "scores.jsonl").read_text().splitlines()]
        self.assertEqual([line["out_of_scope"] for line in lines], [False] + [True] * len(SAMPLES[6:]))


if __name__ == "__main__":
    unittest.main()
