"""Writes a folder of hostile image files for `headtune classify` robustness checks (make hostile).

From one real JPEG and one real PNG (samples/): truncations at many offsets (every byte of the first
48, then a geometric series up to the full length, and around the first JPEG markers / PNG chunk
boundaries), wrong magic bytes, zero-length and one-byte files, huge declared dimensions (JPEG SOF and
PNG IHDR, with a valid CRC), flipped bytes in the headers, and text/HTML renamed to .jpg/.png.
Plus the two good files, which must still be classified. Deterministic: same files every run.

    python3 scripts/make_hostile_files.py OUT_DIR
"""
import os
import random
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def offsets(n):
    cut = set(range(min(n, 48)))
    x = 48
    while x < n:
        cut.add(int(x))
        x *= 1.3
    return sorted(c for c in cut if c < n)


def jpeg_markers(data):
    return [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF) and not 0xD0 <= data[i + 1] <= 0xD7]


def png_chunks(data):
    pos, bounds = 8, []
    while pos + 8 <= len(data):
        length = struct.unpack('>I', data[pos:pos + 4])[0]
        bounds += [pos, pos + 4, pos + 8, pos + 8 + length]
        pos += 12 + length
    return bounds


def png_with_size(data, width, height):
    ihdr = bytearray(data[12:29])  # type + 13 bytes of IHDR data
    ihdr[4:8] = struct.pack('>I', width)
    ihdr[8:12] = struct.pack('>I', height)
    return data[:12] + bytes(ihdr) + struct.pack('>I', zlib.crc32(bytes(ihdr))) + data[33:]


def jpeg_with_size(data, width, height):
    out = bytearray(data)
    for i in jpeg_markers(data):
        if data[i + 1] in (0xC0, 0xC1, 0xC2):
            out[i + 5:i + 7] = struct.pack('>H', height)
            out[i + 7:i + 9] = struct.pack('>H', width)
            break
    return bytes(out)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    jpeg = open(os.path.join(ROOT, 'samples/rocket.jpg'), 'rb').read()
    png = open(os.path.join(ROOT, 'samples/coffee.png'), 'rb').read()
    files = {'good.jpg': jpeg, 'good.png': png, 'empty.jpg': b'', 'empty.png': b'', 'one-byte.jpg': b'\xff',
             'html.jpg': b'<html><body>not an image</body></html>', 'text.png': b'hello\n',
             'gif-magic.png': b'GIF89a' + png[6:], 'png-magic.jpg': png[:8] + jpeg[8:],
             'jpeg-as-png.png': jpeg, 'soi-only.jpg': b'\xff\xd8', 'signature-only.png': png[:8]}
    for name, data, bounds in (('jpg', jpeg, jpeg_markers(jpeg)), ('png', png, png_chunks(png))):
        cuts = set(offsets(len(data)))
        cuts.update(b + d for b in bounds[:24] for d in (-1, 0, 1) if 0 < b + d < len(data))
        for cut in sorted(cuts):
            files[f'cut-{cut:07d}.{name}'] = data[:cut]
    for w, h in ((65535, 65535), (65500, 1), (1, 65500), (0, 100), (100, 0)):
        files[f'size-{w}x{h}.jpg'] = jpeg_with_size(jpeg, w, h)
    for w, h in ((100000, 100000), (2147483647, 1), (0, 10), (10, 0), (4294967295, 4294967295)):
        files[f'size-{w}x{h}.png'] = png_with_size(png, w, h)
    rng = random.Random(0)
    for i in range(40):
        data = bytearray(jpeg if i % 2 == 0 else png)
        for _ in range(1 + i % 4):
            pos = rng.randrange(2, min(len(data), 700))
            data[pos] ^= 1 << rng.randrange(8)
        files[f'flip-{i:02d}.{"jpg" if i % 2 == 0 else "png"}'] = bytes(data)
    for name, data in files.items():
        with open(os.path.join(out_dir, name), 'wb') as f:
            f.write(data)
    print(f'{len(files)} files in {out_dir}')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'bench-data/hostile'))
