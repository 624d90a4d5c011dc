#!/usr/bin/env python3
"""Writes decompression bombs that pass every header limit: a PNG and a baseline JPEG declaring
9,999 x 9,999 pixels (under the 100-megapixel --max-pixels), all black, so they compress about
1000:1 (PNG 290 KB, JPEG a few hundred KB) but cost 300 MB each when decoded at full size.

    scripts/make_bombs.py OUT_DIR [--side 9999]

The JPEG needs cjpeg (apt-get install libjpeg-turbo-progs); it is skipped with a message when absent.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import zlib


def png_bomb(side):
    raw_row = b"\0" * (1 + side * 3)  # filter byte 0, then black RGB
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_bomb(side, path):
    cjpeg = shutil.which("cjpeg")
    if cjpeg is None:
        print("cjpeg not found (apt-get install libjpeg-turbo-progs): no JPEG bomb", file=sys.stderr)
        return False
    with open(path, "wb") as out:
        process = subprocess.Popen([cjpeg, "-quality", "75", "-baseline"], stdin=subprocess.PIPE, stdout=out)
        process.stdin.write(b"P6\n%d %d\n255\n" % (side, side))
        row = b"\0" * (side * 3)
        for _ in range(side):
            process.stdin.write(row)
        process.stdin.close()
        return process.wait() == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--side", type=int, default=9999)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    png_path = os.path.join(args.out_dir, f"bomb_{args.side}x{args.side}.png")
    with open(png_path + ".tmp", "wb") as f:
        f.write(png_bomb(args.side))
    os.replace(png_path + ".tmp", png_path)
    print(png_path, os.path.getsize(png_path))
    jpeg_path = os.path.join(args.out_dir, f"bomb_{args.side}x{args.side}.jpg")
    if jpeg_bomb(args.side, jpeg_path + ".tmp"):
        os.replace(jpeg_path + ".tmp", jpeg_path)
        print(jpeg_path, os.path.getsize(jpeg_path))


if __name__ == "__main__":
    main()
