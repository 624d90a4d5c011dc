#!/usr/bin/env python3
"""Cut the demo's labelled material-recognition set from the scikit-image wheel (standard library only).

    python3 scripts/make_texture_tiles.py [OUT_DIR]     # default: demo-data/textures

The brick, grass and gravel photos in the scikit-image 0.26.0 wheel (the same pinned wheel as
samples/, fetched and hash-checked through scripts/assets.py) are 512x512 8-bit grey PNGs. Each is
cut into a 5x5 grid of 102x102 tiles: the top four rows go to OUT_DIR/train/<material>/ and the
bottom row to OUT_DIR/test/<material>/, so `headtune evaluate` sees image regions that training
never saw. Idempotent: existing tiles are rewritten with identical bytes.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import assets  # noqa: E402

# Members of the pinned wheel and their sha256 (checked before use).
TEXTURES = {
    "brick": ("skimage/data/brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
    "grass": ("skimage/data/grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),
    "gravel": ("skimage/data/gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
}
GRID = 5
TILE = 102
TEST_ROWS = {GRID - 1}


def decode_grey_png(data: bytes) -> tuple[int, int, bytearray]:
    """8-bit greyscale, non-interlaced PNG -> (width, height, pixels)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (8, 0, 0):
        raise ValueError(f"expected 8-bit grey non-interlaced, got depth {depth} colour {colour} interlace {interlace}")
    raw = zlib.decompress(idat)
    pixels, previous = bytearray(), bytearray(width)
    for y in range(height):
        kind, row = raw[y * (width + 1)], bytearray(raw[y * (width + 1) + 1:(y + 1) * (width + 1)])
        for x in range(width):  # PNG filters (specification section 9), 1 byte per pixel
            a = row[x - 1] if x else 0
            b = previous[x]
            c = previous[x - 1] if x else 0
            if kind == 1:
                row[x] = (row[x] + a) & 255
            elif kind == 2:
                row[x] = (row[x] + b) & 255
            elif kind == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += row
        previous = row
    return width, height, pixels


def encode_grey_png(width: int, height: int, pixels: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else assets.ROOT / "demo-data" / "textures"
    [asset] = assets.load_manifest(assets.MANIFESTS["samples"])
    wheel = assets.fetch_wheel(asset, assets.MANIFESTS["samples"].parent / ".cache")
    with zipfile.ZipFile(wheel) as archive:
        for material, (member, sha) in TEXTURES.items():
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != sha:
                raise SystemExit(f"{wheel.name}:{member}: sha256 differs from the pinned {sha}")
            width, height, pixels = decode_grey_png(data)
            for row in range(GRID):
                for column in range(GRID):
                    tile = b"".join(pixels[(row * TILE + y) * width + column * TILE:(row * TILE + y) * width + (column + 1) * TILE]
                                    for y in range(TILE))
                    part = "test" if row in TEST_ROWS else "train"
                    path = out / part / material / f"{material}_r{row}c{column}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(encode_grey_png(TILE, TILE, tile))
    print(f"wrote {GRID * GRID * len(TEXTURES)} tiles to {out}/train and {out}/test")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
