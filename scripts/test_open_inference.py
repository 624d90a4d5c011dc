"""The Open Inference Protocol (/v2) and the OpenAPI document with stock tools from PyPI, against the
server binary on a loopback port with the bundled weights:

- scripts/open_inference_clients.py: tritonclient[http] and kserve's REST client, answers equal to /v1/classify;
- schemathesis on /openapi.json: no 5xx, no response outside the spec (bounded examples, ~15 s);
- scripts/validate_manifests.py: README's Kubernetes manifests through kubernetes-validate.

The clients live in a virtualenv, .venv-kserve (scripts/requirements-kserve.txt, reinstalled when that
file changes). Skipped, saying why, when PyPI cannot be reached. The binary: $HEADTUNE, else
.build/release/headtune when built, else the debug build (`swift build --product headtune`, which the
`swift test` that follows in `make test` reuses, so CI does not pay for a second, release, build).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-kserve"
REQUIREMENTS = ROOT / "scripts" / "requirements-kserve.txt"
VENV_PYTHON = VENV / "bin" / "python"
SCHEMATHESIS_EXAMPLES = 10


def pypi_reachable() -> str | None:
    """None when the package index answers, else why not."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(index, timeout=15):
            return None
    except (urllib.error.URLError, OSError) as error:
        return f"{index}: {error}"


def ensure_venv(venv: Path = VENV, requirements: Path = REQUIREMENTS, checks: str = "the tritonclient/kserve/schemathesis checks") -> None:
    """Creates `venv` and installs the pinned `requirements` unless it already has this requirements file."""
    python = venv / "bin" / "python"
    stamp = venv / "requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    problem = pypi_reachable()
    if problem:
        raise unittest.SkipTest(f"PyPI is unreachable ({problem}); skipping {checks}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    started = time.monotonic()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
                   check=True, timeout=900)
    print(f"\n[{venv.name}] installed {requirements.name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    stamp.write_text(digest)


def server_binary() -> Path:
    if os.environ.get("HEADTUNE"):
        return Path(os.environ["HEADTUNE"])
    release = ROOT / ".build" / "release" / "headtune"
    if release.exists():
        return release
    subprocess.run(["swift", "build", "--jobs", os.environ.get("SWIFT_JOBS", "1"), "--product", "headtune"], cwd=ROOT, check=True)
    return ROOT / ".build" / "debug" / "headtune"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OpenInferenceWithStockClients(unittest.TestCase):
    server: subprocess.Popen
    address: str

    @classmethod
    def setUpClass(cls):
        ensure_venv()
        binary = server_binary()
        cls.address = f"127.0.0.1:{free_port()}"
        cls.log = tempfile.NamedTemporaryFile(prefix="headtune-serve-", suffix=".log", delete=False)
        host, port = cls.address.split(":")
        cls.server = subprocess.Popen([str(binary), "serve", "--host", host, "--port", port, "--no-text-encoder"],
                                      cwd=ROOT, stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://{cls.address}/v2/health/ready", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if cls.server.poll() is not None or time.monotonic() > deadline:
                cls.server.kill()
                raise RuntimeError(f"headtune serve did not become ready; log: {Path(cls.log.name).read_text()[-2000:]}")
            time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        cls.server.send_signal(signal.SIGTERM)
        status = cls.server.wait(timeout=60)
        os.unlink(cls.log.name)
        assert status == 0, f"headtune serve exited with status {status} after SIGTERM"

    def run_in_venv(self, arguments: list[str], timeout: float, program: Path = VENV_PYTHON) -> subprocess.CompletedProcess:
        environment = dict(os.environ, HEADTUNE_URL=self.address)
        # In a scratch directory: schemathesis leaves a .schemathesis/ cache where it runs.
        with tempfile.TemporaryDirectory() as scratch:
            return subprocess.run([str(program), *arguments], cwd=scratch, env=environment, capture_output=True, text=True,
                                  timeout=timeout)

    def test_tritonclient_and_kserve_answer_as_v1(self):
        run = self.run_in_venv([str(ROOT / "scripts" / "open_inference_clients.py"), "-v"], timeout=300)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("OK", run.stderr)

    def test_schemathesis_finds_no_server_error_and_no_response_outside_the_spec(self):
        # All checks but positive_data_acceptance: a body the spec can only call "binary" (an image) is
        # rightly refused with 422 when schemathesis makes it up.
        run = self.run_in_venv(["run", f"http://{self.address}/openapi.json",
                                "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--seed", "17", "--checks", "all",
                                "--exclude-checks", "positive_data_acceptance"], timeout=300, program=VENV / "bin" / "schemathesis")
        summary = [line for line in run.stdout.splitlines() if "generated" in line or line.startswith("=")]
        print("\n[schemathesis] " + " | ".join(line.strip("= ") for line in summary[-2:]), file=sys.stderr)
        self.assertEqual(run.returncode, 0, run.stdout[-6000:] + run.stderr[-2000:])

    def test_readme_manifests_are_valid_kubernetes(self):
        run = self.run_in_venv([str(ROOT / "scripts" / "validate_manifests.py")], timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main()
