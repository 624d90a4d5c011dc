#!/usr/bin/env python3
"""Writes the small decoder fixtures of Tests/ImagingTests/Resources/fixtures/.

Run in a throwaway virtualenv (Pillow, numpy and pillow-heif for the HEIC files, plus a C compiler and libjpeg-dev for the one
YCCK file, which Pillow cannot write, and libtiff-tools' tiffcp for the tiled TIFFs, which Pillow
cannot write either):

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install pillow numpy pillow-heif
    /tmp/fixvenv/bin/python scripts/make_imaging_fixtures.py

For every image fixture it writes `<name>` plus `<name>.rgb` (the expected decoded pixels, raw
RGB bytes) and an entry in `fixtures.json` with the expected size and the allowed per-value
difference. Where the expectation comes from:
  * PNG: computed here from the sample values written into the file (our own tiny PNG encoder,
    so every colour type / bit depth / interlace combination exists), using the decoder's
    documented rules: 16-bit -> 8-bit as (v * 255 + 32895) >> 16, low-bit grey scaled to
    0..255, alpha composited on white, (a*c + (255-a)*255)/255 rounded. For 8-bit and low-bit
    images the script checks that Pillow (convert('RGBA') + paste on white, or convert('RGB'))
    decodes the file to the same values, so the encoder itself is verified.
  * JPEG: Pillow's decode (libjpeg-turbo too), with ImageOps.exif_transpose for orientation
    files, convert('RGB') for grey and CMYK/YCCK (Pillow reads 4-channel JPEGs as Adobe-inverted).
  * WebP: lossless files expect the written pixels (alpha composited on white), checked against
    Pillow's decode; lossy files expect Pillow's decode (its own bundled libwebp). Animations: the
    first frame; one animation is assembled here chunk by chunk so its first frame sits inside a
    larger canvas. The scaled-decode file expects Pillow's reduce() of its full decode.
  * TIFF: Pillow's decode with exif_transpose (tag 274) and convert('RGB') / paste on white, except
    16-bit grey, where Pillow clips to 255: computed from the samples as v >> 8, libtiff's rule
    (its RGBA interface keeps the high byte). Multi-page files expect the first page.
  * HEIC: pillow-heif's decode (its own bundled libheif and libde265, not the system's the decoder
    uses: within 2 levels); pillow-heif turns EXIF orientation into the container's irot box.
Seeds for the decode fuzzer (the WebP and TIFF files) are copied to Fuzz/corpus/decode/.
Error fixtures are tiny valid files whose header bytes were patched (CRC fixed for PNG).
The output is deterministic (fixed seeds, no timestamps).
"""
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ImagingTests",
                   "Resources", "fixtures")
FUZZ_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fuzz", "corpus", "decode")
manifest = {"png": [], "jpeg": [], "webp": [], "tiff": [], "heif": [], "errors": {}, "resize": []}


# ---------------------------------------------------------------- PNG encoding (minimal, spec)
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(values, depth):
    values = [int(v) for v in values]
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in values)
    if depth == 8:
        return bytes(values)
    per_byte = 8 // depth
    out = bytearray((len(values) + per_byte - 1) // per_byte)
    for i, v in enumerate(values):
        out[i // per_byte] |= v << (8 - depth * (i % per_byte + 1))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(samples, color_type, depth, palette=None, trns=None, interlace=False, exif=None):
    """samples: (H, W, C) integer array of raw sample values (palette indices for type 3)."""
    h, w, _ = samples.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue  # empty passes are omitted entirely
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        data += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    if exif is not None:
        data += chunk(b"eXIf", exif)
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += chunk(b"IEND", b"")
    return data


def to8(values, depth):
    values = values.astype(np.int64)
    if depth == 16:
        return (values * 255 + 32895) >> 16
    return values * 255 // ((1 << depth) - 1)


def on_white(rgb, alpha):
    t = alpha[..., None] * rgb + (255 - alpha[..., None]) * 255 + 128
    return ((t >> 8) + t) >> 8


def pillow_rgb_on_white(im):
    """Pillow's RGB of an image, alpha (if any) composited on white with paste(mask=alpha)."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.split()[3])
        return np.asarray(bg)
    return np.asarray(im.convert("RGB"))


def pillow_reference(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return pillow_rgb_on_white(im)


def add_png(name, samples, color_type, depth, expected, pillow_check=True, **kw):
    data = encode_png(samples, color_type, depth, **kw)
    expected = np.asarray(expected, np.int64)
    assert expected.min() >= 0 and expected.max() <= 255
    expected = expected.astype(np.uint8)
    if pillow_check:
        ref = pillow_reference(data)
        assert np.array_equal(ref, expected), f"{name}: Pillow disagrees with the computed expectation"
    write(name, data)
    write(name + ".rgb", expected.tobytes())
    manifest["png"].append({"file": name, "width": int(samples.shape[1]), "height": int(samples.shape[0]),
                            "colorType": color_type, "bitDepth": depth, "interlaced": bool(kw.get("interlace")),
                            "tolerance": 0})


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def make_pngs():
    rng = np.random.default_rng(20240611)
    H, W = 9, 13  # odd sizes: Adam7 passes end in partial blocks

    for depth in (1, 2, 4, 8, 16):
        for interlace in (False, True):
            if interlace and depth not in (2, 8, 16):
                continue
            g = rng.integers(0, 1 << depth, size=(H, W, 1))
            g[0, 0, 0] = 0
            g[0, 1, 0] = (1 << depth) - 1
            v = to8(g[..., 0], depth)
            suffix = "_interlaced" if interlace else ""
            add_png(f"png_gray{depth}{suffix}.png", g, 0, depth, np.stack([v, v, v], -1),
                    pillow_check=depth != 16, interlace=interlace)

    # grey with a transparent grey value (tRNS), 8 and 4 bit. Pillow 13 compares the unscaled
    # 4-bit key with the scaled 8-bit samples and so finds no transparent pixel; libpng follows
    # the PNG spec (the key is in the image's bit depth), so that file is not checked by Pillow.
    for depth in (4, 8):
        g = rng.integers(0, 1 << depth, size=(H, W, 1))
        key = int(g[2, 3, 0])
        v = to8(g[..., 0], depth)
        alpha = np.where(g[..., 0] == key, 0, 255)
        add_png(f"png_gray{depth}_trns.png", g, 0, depth, on_white(np.stack([v, v, v], -1), alpha),
                pillow_check=depth == 8, trns=struct.pack(">H", key))

    for depth in (8, 16):
        for interlace in (False, True):
            if interlace and depth == 16:
                continue
            la = rng.integers(0, 1 << depth, size=(H, W, 2))
            la[0, 0, 1] = 0
            la[0, 1, 1] = (1 << depth) - 1
            v, a = to8(la[..., 0], depth), to8(la[..., 1], depth)
            suffix = "_interlaced" if interlace else ""
            add_png(f"png_graya{depth}{suffix}.png", la, 4, depth, on_white(np.stack([v, v, v], -1), a),
                    pillow_check=depth != 16, interlace=interlace)

    for depth in (8, 16):
        for interlace in (False, True):
            rgb = rng.integers(0, 1 << depth, size=(H, W, 3))
            suffix = "_interlaced" if interlace else ""
            add_png(f"png_rgb{depth}{suffix}.png", rgb, 2, depth, to8(rgb, depth),
                    pillow_check=depth != 16, interlace=interlace)

    # RGB with a transparent colour key
    rgb = rng.integers(0, 256, size=(H, W, 3))
    rgb[4, 5] = rgb[1, 1]
    key = rgb[1, 1].copy()
    alpha = np.where(np.all(rgb == key, axis=-1), 0, 255)
    add_png("png_rgb8_trns.png", rgb, 2, 8, on_white(rgb, alpha), trns=struct.pack(">HHH", *[int(k) for k in key]))

    for depth in (8, 16):
        for interlace in (False, True):
            rgba = rng.integers(0, 1 << depth, size=(H, W, 4))
            rgba[0, 0, 3] = 0
            rgba[0, 1, 3] = (1 << depth) - 1
            rgba[0, 2, 3] = (1 << depth) // 2
            c, a = to8(rgba[..., :3], depth), to8(rgba[..., 3], depth)
            suffix = "_interlaced" if interlace else ""
            add_png(f"png_rgba{depth}{suffix}.png", rgba, 6, depth, on_white(c, a),
                    pillow_check=depth != 16, interlace=interlace)

    for depth in (1, 2, 4, 8):
        n = 1 << depth
        palette = rng.integers(0, 256, size=(n, 3))
        idx = rng.integers(0, n, size=(H, W, 1))
        add_png(f"png_palette{depth}.png", idx, 3, depth, palette[idx[..., 0]], palette=palette)

    # palette + tRNS (fewer alpha entries than palette entries: the rest are opaque)
    for depth, interlace in ((8, False), (4, False), (8, True)):
        n = 1 << depth
        palette = rng.integers(0, 256, size=(n, 3))
        alphas = rng.integers(0, 256, size=(n // 2,))
        alphas[0] = 0
        idx = rng.integers(0, n, size=(H, W, 1))
        idx[0, 0, 0] = 0
        full_alpha = np.concatenate([alphas, np.full(n - len(alphas), 255)])
        suffix = "_interlaced" if interlace else ""
        add_png(f"png_palette{depth}_trns{suffix}.png", idx, 3, depth,
                on_white(palette[idx[..., 0]], full_alpha[idx[..., 0]]),
                palette=palette, trns=bytes(alphas.astype(np.uint8)), interlace=interlace)

    # eXIf orientation 6 in a PNG (rotate clockwise); expectation = Pillow's exif_transpose
    rgb = rng.integers(0, 256, size=(4, 6, 3))
    data = encode_png(rgb, 2, 8, exif=tiff_orientation(6, "MM"))
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert ref.shape == (6, 4, 3)
    assert np.array_equal(ref, np.rot90(rgb, -1).astype(np.uint8))
    write("png_exif_orientation6.png", data)
    write("png_exif_orientation6.png.rgb", ref.tobytes())
    manifest["png"].append({"file": "png_exif_orientation6.png", "width": 4, "height": 6, "colorType": 2,
                            "bitDepth": 8, "interlaced": False, "tolerance": 0, "orientation": 6})
    return rng


# ---------------------------------------------------------------- JPEG
def tiff_orientation(value, order):
    """A minimal TIFF structure with IFD0 = {0x010F Make: 'x', 0x0112 Orientation: value}."""
    e = "<" if order == "II" else ">"
    out = (b"II" if order == "II" else b"MM") + struct.pack(e + "HI", 42, 8)
    out += struct.pack(e + "H", 2)
    out += struct.pack(e + "HHI", 0x010F, 2, 2) + b"x\x00\x00\x00"            # ASCII "x\0"
    out += struct.pack(e + "HHIH", 0x0112, 3, 1, value) + b"\x00\x00"         # SHORT, left-justified
    out += struct.pack(e + "I", 0)
    return out


def pillow_jpeg(data, transpose=False, draft=None):
    im = Image.open(io.BytesIO(data))
    if draft:
        im.draft("RGB", draft)
    im.load()
    if transpose:
        im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGB"))


def add_jpeg(name, data, expected, tolerance=0, **extra):
    # The JPEG seeds of the fuzz corpus are kept by hand in Fuzz/corpus.
    add_image("jpeg", name, data, expected, tolerance, fuzz_seed=False, **extra)


def save_jpeg(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def smooth_rgb(h, w, rng):
    y, x = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], -1) + rng.normal(0, 4, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


ORIENTATION_COLOURS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                                [[255, 255, 0], [255, 0, 255], [0, 255, 255]]], np.uint8)


def make_jpegs(rng):
    base = Image.fromarray(smooth_rgb(24, 32, rng))
    data = save_jpeg(base, quality=90)  # 4:2:0, baseline
    add_jpeg("jpeg_baseline.jpg", data, pillow_jpeg(data))
    data = save_jpeg(base, quality=90, progressive=True)
    assert Image.open(io.BytesIO(data)).info.get("progressive")
    add_jpeg("jpeg_progressive.jpg", data, pillow_jpeg(data))
    grey = Image.fromarray(smooth_rgb(24, 32, rng)[..., 1])
    data = save_jpeg(grey, quality=90)
    assert Image.open(io.BytesIO(data)).mode == "L"
    add_jpeg("jpeg_gray.jpg", data, pillow_jpeg(data))

    # CMYK: Pillow writes Adobe-inverted CMYK with an Adobe APP14 marker. Flat 8x8 blocks of
    # known inks, so the colour each block should have is also checked by the tests.
    inks = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0),
            (0, 0, 0, 255), (0, 0, 0, 128), (128, 64, 0, 32), (40, 200, 120, 60)]
    cmyk = np.zeros((8, 64, 4), np.uint8)
    for i, ink in enumerate(inks):
        cmyk[:, i * 8:(i + 1) * 8] = ink
    data = save_jpeg(Image.fromarray(cmyk, "CMYK"), quality=95)
    assert Image.open(io.BytesIO(data)).info.get("adobe") is not None
    add_jpeg("jpeg_cmyk_adobe.jpg", data, pillow_jpeg(data), inks=[list(i) for i in inks])

    ycck = make_ycck(cmyk)
    if ycck is not None:
        im = Image.open(io.BytesIO(ycck))
        assert im.mode == "CMYK" and im.info.get("adobe_transform") == 2
        add_jpeg("jpeg_ycck_adobe.jpg", ycck, pillow_jpeg(ycck), inks=[list(i) for i in inks])

    # EXIF orientations on a 3x2 image with six distinct colours, both byte orders.
    src = Image.fromarray(ORIENTATION_COLOURS)
    for order in ("II", "MM"):
        for value in range(1, 9):
            exif = b"Exif\x00\x00" + tiff_orientation(value, order)
            data = save_jpeg(src, quality=100, subsampling=0, exif=exif)
            assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == value
            add_jpeg(f"jpeg_orientation{value}_{order}.jpg", data, pillow_jpeg(data, transpose=True),
                     orientation=value, sourceColours=ORIENTATION_COLOURS.reshape(-1).tolist())

    # Draft (DCT-scaled) decoding: odd size so the scaled sizes round up.
    big = Image.fromarray(smooth_rgb(481, 643, rng))
    data = save_jpeg(big, quality=40)
    eighth = pillow_jpeg(data, draft=(643 // 8, 481 // 8))
    assert eighth.shape == (61, 81, 3), eighth.shape
    add_jpeg("jpeg_643x481.jpg", data, eighth, scaleDenominator=8)


YCCK_WRITER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(int argc, char **argv) {
    int w = atoi(argv[2]), h = atoi(argv[3]);
    unsigned char *buf = malloc((size_t)w * h * 4);
    if (fread(buf, 1, (size_t)w * h * 4, stdin) != (size_t)w * h * 4) return 1;
    struct jpeg_compress_struct c; struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e); jpeg_create_compress(&c);
    FILE *out = fopen(argv[1], "wb"); jpeg_stdio_dest(&c, out);
    c.image_width = w; c.image_height = h; c.input_components = 4; c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c); jpeg_set_colorspace(&c, JCS_YCCK); jpeg_set_quality(&c, 95, TRUE);
    for (int i = 0; i < 4; i++) { c.comp_info[i].h_samp_factor = 1; c.comp_info[i].v_samp_factor = 1; }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = buf + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c); fclose(out); jpeg_destroy_compress(&c); return 0;
}
"""


def make_ycck(cmyk):
    """Pillow cannot write YCCK; a 20-line libjpeg program does (Adobe-inverted input)."""
    cc = shutil.which("cc")
    if cc is None:
        print("warning: no C compiler, skipping the YCCK fixture", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe, out = os.path.join(tmp, "ycck"), os.path.join(tmp, "ycck.jpg")
        subprocess.run([cc, "-x", "c", "-", "-o", exe, "-ljpeg"], input=YCCK_WRITER.encode(), check=True)
        inverted = (255 - cmyk).astype(np.uint8)
        subprocess.run([exe, out, str(cmyk.shape[1]), str(cmyk.shape[0])], input=inverted.tobytes(), check=True)
        with open(out, "rb") as f:
            return f.read()


# ---------------------------------------------------------------- WebP
def add_image(kind, name, data, expected, tolerance=0, fuzz_seed=True, **extra):
    write(name, data)
    write(name + ".rgb", expected.astype(np.uint8).tobytes())
    entry = {"file": name, "width": int(expected.shape[1]), "height": int(expected.shape[0]), "tolerance": tolerance}
    entry.update(extra)
    manifest[kind].append(entry)
    if fuzz_seed:
        seed(name, data)


def seed(name, data):
    os.makedirs(FUZZ_CORPUS, exist_ok=True)
    with open(os.path.join(FUZZ_CORPUS, name), "wb") as f:
        f.write(data)


def save(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def decode_pillow(data, transpose=True):
    im = Image.open(io.BytesIO(data))
    im.load()
    if transpose:
        im = ImageOps.exif_transpose(im)
    return pillow_rgb_on_white(im)


def riff_chunk(tag, payload):
    return tag + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def webp_bitstream(data):
    """The VP8/VP8L chunk of a simple-format WebP written by Pillow."""
    assert data[12:16] in (b"VP8 ", b"VP8L"), data[12:16]
    size = struct.unpack("<I", data[16:20])[0]
    return data[12:20 + size + size % 2]


def animated_with_offset(frame_rgba, canvas_w, canvas_h, x, y):
    """An animation whose first frame (lossless, with alpha) covers only part of the canvas."""
    bitstream = webp_bitstream(save(Image.fromarray(frame_rgba, "RGBA"), "WEBP", lossless=True, exact=True))
    h, w = frame_rgba.shape[:2]
    u24 = lambda v: struct.pack("<I", v)[:3]
    vp8x = riff_chunk(b"VP8X", bytes([0x02 | 0x10, 0, 0, 0]) + u24(canvas_w - 1) + u24(canvas_h - 1))  # animation + alpha
    anim = riff_chunk(b"ANIM", struct.pack("<IH", 0x00000000, 0))  # transparent background, loop forever
    anmf = riff_chunk(b"ANMF", u24(x // 2) + u24(y // 2) + u24(w - 1) + u24(h - 1) + u24(100) + b"\x02" + bitstream)
    body = b"WEBP" + vp8x + anim + anmf
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_webps(rng):
    H, W = 9, 13
    rgb = rng.integers(0, 256, size=(H, W, 3)).astype(np.uint8)
    data = save(Image.fromarray(rgb), "WEBP", lossless=True)
    assert np.array_equal(decode_pillow(data), rgb)
    add_image("webp", "webp_lossless.webp", data, rgb, lossless=True)

    rgba = rng.integers(0, 256, size=(H, W, 4)).astype(np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128
    data = save(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True, exact=True)
    expected = on_white(rgba[..., :3].astype(np.int64), rgba[..., 3].astype(np.int64))
    assert np.array_equal(decode_pillow(data), expected)
    add_image("webp", "webp_lossless_alpha.webp", data, expected, lossless=True)

    smooth = smooth_rgb(24, 32, rng)
    data = save(Image.fromarray(smooth), "WEBP", quality=90)
    add_image("webp", "webp_lossy.webp", data, decode_pillow(data), tolerance=2)

    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (24, 1))
    data = save(Image.fromarray(np.dstack([smooth, alpha]), "RGBA"), "WEBP", quality=90)
    add_image("webp", "webp_lossy_alpha.webp", data, decode_pillow(data), tolerance=2)

    # An animation (two lossless frames): the first frame is decoded.
    first, second = rgb, (255 - rgb)
    data = save(Image.fromarray(first), "WEBP", save_all=True, append_images=[Image.fromarray(second)],
                lossless=True, duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert np.array_equal(decode_pillow(data), first)
    add_image("webp", "webp_animated.webp", data, first, lossless=True, animated=True)

    frame = rng.integers(0, 256, size=(5, 7, 4)).astype(np.uint8)
    frame[..., 3] = 255
    frame[0, 0, 3] = 0
    data = animated_with_offset(frame, 16, 12, 4, 6)
    expected = np.full((12, 16, 3), 255, np.int64)
    expected[6:11, 4:11] = on_white(frame[..., :3].astype(np.int64), frame[..., 3].astype(np.int64))
    assert np.array_equal(decode_pillow(data), expected), "Pillow disagrees on the offset frame"
    add_image("webp", "webp_animated_offset_frame.webp", data, expected, lossless=True, animated=True)

    # EXIF orientation 6 in the RIFF EXIF chunk (Pillow writes it without the "Exif\0\0" prefix).
    src = rng.integers(0, 256, size=(4, 6, 3)).astype(np.uint8)
    data = save(Image.fromarray(src), "WEBP", lossless=True, exif=b"Exif\x00\x00" + tiff_orientation(6, "II"))
    expected = decode_pillow(data)
    assert expected.shape == (6, 4, 3) and np.array_equal(expected, np.rot90(src, -1))
    add_image("webp", "webp_exif_orientation6.webp", data, expected, lossless=True, orientation=6)

    # Scaled decoding: libwebp's scaler against Pillow's reduce() of the full decode.
    y, x = np.mgrid[0:360, 0:480]
    big = np.stack([128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0), 255 * x / 479, 255 * y / 359], -1).astype(np.uint8)
    data = save(Image.fromarray(big), "WEBP", quality=60)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    reduced = np.asarray(full.reduce(3))  # minimumSide 60: floor(360 / 120) = 3
    # libwebp scales the Y, U and V planes before converting to RGB, Pillow's reduce() averages the
    # RGB of the full decode: measured max 14, mean 1.5 levels apart on this file.
    add_image("webp", "webp_480x360.webp", data, reduced, tolerance=16, scaleDenominator=3, minimumSide=60)

    # A flat 4000 x 3000 photo-sized file (22 KB): decoded scaled, it never holds 36 MB.
    write("webp_flat_4000x3000.webp", save(Image.new("RGB", (4000, 3000), (30, 120, 200)), "WEBP", quality=50))


# ---------------------------------------------------------------- TIFF
def tiffcp(data, *args):
    """Rewrites a TIFF with libtiff's tiffcp (tiles, which Pillow cannot write); None without it."""
    exe = shutil.which("tiffcp")
    if exe is None:
        print("warning: no tiffcp (apt-get install libtiff-tools), skipping the tiled TIFFs", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.tif"), os.path.join(tmp, "out.tif")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run([exe, *args, src, dst], check=True)
        with open(dst, "rb") as f:
            return f.read()


def make_tiffs(rng):
    H, W = 9, 13
    rgb = rng.integers(0, 256, size=(H, W, 3)).astype(np.uint8)
    for compression in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"):
        data = save(Image.fromarray(rgb), "TIFF", compression=compression)
        assert np.array_equal(decode_pillow(data), rgb)
        add_image("tiff", f"tiff_rgb8_{compression.replace('tiff_', '')}.tif", data, rgb, lossless=True)

    grey = rng.integers(0, 256, size=(H, W)).astype(np.uint8)
    data = save(Image.fromarray(grey, "L"), "TIFF", compression="tiff_lzw")
    add_image("tiff", "tiff_gray8_lzw.tif", data, np.repeat(grey[..., None], 3, -1), lossless=True)

    bits = (rng.integers(0, 2, size=(H, W)) * 255).astype(np.uint8)
    data = save(Image.fromarray(bits, "L").convert("1"), "TIFF", compression="group4")
    add_image("tiff", "tiff_bilevel_group4.tif", data, decode_pillow(data), lossless=True)

    palette = rng.integers(0, 256, size=(16, 3)).astype(np.uint8)
    index = rng.integers(0, 16, size=(H, W)).astype(np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(palette.reshape(-1).tolist())
    data = save(im, "TIFF", compression="tiff_adobe_deflate")
    add_image("tiff", "tiff_palette_deflate.tif", data, palette[index], lossless=True)
    assert np.array_equal(decode_pillow(data), palette[index])

    grey16 = rng.integers(0, 65536, size=(H, W)).astype(np.uint16)
    grey16[0, 0], grey16[0, 1] = 0, 65535
    im = Image.fromarray(grey16)
    assert im.mode == "I;16", im.mode
    data = save(im, "TIFF")
    v = grey16.astype(np.int64) >> 8  # libtiff's RGBA interface keeps the high byte
    add_image("tiff", "tiff_gray16.tif", data, np.repeat(v[..., None], 3, -1), tolerance=0, bitDepth=16)

    # CMYK: libtiff's conversion truncates, (255-k)*(255-c)/255, where Pillow rounds: within 1.
    cmyk = rng.integers(0, 256, size=(H, W, 4)).astype(np.uint8)
    data = save(Image.fromarray(cmyk, "CMYK"), "TIFF", compression="tiff_lzw")
    add_image("tiff", "tiff_cmyk_lzw.tif", data, decode_pillow(data), tolerance=1)

    rgba = rng.integers(0, 256, size=(H, W, 4)).astype(np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128
    data = save(Image.fromarray(rgba, "RGBA"), "TIFF", compression="tiff_adobe_deflate")
    # libtiff premultiplies with (c * a + 127) / 255 before the composite: within 1 of Pillow.
    add_image("tiff", "tiff_rgba_deflate.tif", data, decode_pillow(data), tolerance=1)

    smooth = smooth_rgb(24, 32, rng)
    data = save(Image.fromarray(smooth), "TIFF", compression="jpeg", quality=90)
    add_image("tiff", "tiff_jpeg_ycbcr.tif", data, decode_pillow(data), tolerance=2)

    # Multi-page: the first page is decoded.
    pages = [Image.fromarray(rgb), Image.fromarray(255 - rgb), Image.fromarray(grey, "L")]
    data = save(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    add_image("tiff", "tiff_multipage.tif", data, rgb, lossless=True, pages=3)

    # Tiles (16 x 16, a 40 x 37 image so edge tiles are partial), contiguous and separate planes.
    tiled_src = rng.integers(0, 256, size=(37, 40, 3)).astype(np.uint8)
    plain = save(Image.fromarray(tiled_src), "TIFF")
    for name, args in (("tiff_tiled_lzw.tif", ["-t", "-w", "16", "-l", "16", "-c", "lzw"]),
                       ("tiff_tiled_planar_deflate.tif", ["-t", "-w", "16", "-l", "16", "-p", "separate", "-c", "zip"]),
                       ("tiff_strips_rows3.tif", ["-r", "3", "-c", "lzw"])):
        data = tiffcp(plain, *args)
        if data is not None:
            assert np.array_equal(decode_pillow(data), tiled_src), name
            add_image("tiff", name, data, tiled_src, lossless=True)

    # Orientation tag 274, every value: expected = Pillow's exif_transpose.
    src = Image.fromarray(ORIENTATION_COLOURS)
    for value in range(1, 9):
        data = save(src, "TIFF", tiffinfo={274: value})
        assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == value
        add_image("tiff", f"tiff_orientation{value}.tif", data, decode_pillow(data), lossless=True,
                  orientation=value, sourceColours=ORIENTATION_COLOURS.reshape(-1).tolist())


# ---------------------------------------------------------------- HEIC
def make_heics(rng):
    try:
        import pillow_heif
    except ImportError:
        print("warning: no pillow-heif (pip install pillow-heif), skipping the HEIC files", file=sys.stderr)
        return None
    pillow_heif.register_heif_opener()
    smooth = smooth_rgb(24, 32, rng)
    data = save(Image.fromarray(smooth), "HEIF", quality=90)
    add_image("heif", "heic_rgb.heic", data, decode_pillow(data), tolerance=2)

    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (24, 1))
    data = save(Image.fromarray(np.dstack([smooth, alpha]), "RGBA"), "HEIF", quality=90)
    assert Image.open(io.BytesIO(data)).mode == "RGBA"
    add_image("heif", "heic_alpha.heic", data, decode_pillow(data), tolerance=2)

    # Stored 48 x 32 in four flat quadrants, rotated by the container (irot) to 32 x 48.
    quadrants = np.repeat(np.repeat(ORIENTATION_COLOURS[:, :2], 16, 0), 24, 1)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = save(Image.fromarray(quadrants), "HEIF", quality=95, exif=exif.tobytes())
    assert b"irot" in data
    expected = decode_pillow(data)
    assert expected.shape == (48, 32, 3), expected.shape
    add_image("heif", "heic_irot.heic", data, expected, tolerance=2, orientation=6)
    return data


def patch_tiff_size(data, width, height):
    """Rewrites ImageWidth/ImageLength (LONG or SHORT) in the first IFD of a little-endian TIFF."""
    data = bytearray(data)
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd:ifd + 2])[0]
    for i in range(count):
        e = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[e:e + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[e + 2:e + 4] = struct.pack("<H", 4)
            data[e + 4:e + 12] = struct.pack("<II", 1, value)
    return bytes(data)


# ---------------------------------------------------------------- error fixtures
def patch_png_ihdr(data, width, height):
    ihdr = bytearray(data[8:8 + 25])
    ihdr[8:16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(ihdr[4:21])) & 0xFFFFFFFF
    ihdr[21:25] = struct.pack(">I", crc)
    return data[:8] + bytes(ihdr) + data[33:]


def patch_jpeg_sof(data, width=None, height=None, precision=None):
    data = bytearray(data)
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            if precision is not None:
                data[i + 4] = precision
            if height is not None:
                data[i + 5:i + 7] = struct.pack(">H", height)
            if width is not None:
                data[i + 7:i + 9] = struct.pack(">H", width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF")


def make_errors(heic):
    tiny_png = encode_png(np.zeros((2, 2, 3), np.int64), 2, 8)
    tiny_jpeg = save_jpeg(Image.new("RGB", (16, 16), (10, 200, 30)), quality=90)
    errors = {
        "png_bomb_100000x100000.png": patch_png_ihdr(tiny_png, 100000, 100000),
        "png_wide_2147483647x1.png": patch_png_ihdr(tiny_png, 0x7FFFFFFF, 1),
        "png_zero_width.png": patch_png_ihdr(tiny_png, 0, 2),
        "jpeg_bomb_65000x65000.jpg": patch_jpeg_sof(tiny_jpeg, 65000, 65000),
        "jpeg_bomb_65535x65535.jpg": patch_jpeg_sof(tiny_jpeg, 65535, 65535),
        "jpeg_zero_height.jpg": patch_jpeg_sof(tiny_jpeg, height=0),
        "jpeg_12bit.jpg": patch_jpeg_sof(tiny_jpeg, precision=12),
        "not_an_image.txt": b"<html><body>not a picture</body></html>\n",
    }
    tiny_webp = save(Image.fromarray(np.zeros((8, 8, 3), np.uint8)), "WEBP", lossless=True)
    lossy_webp = save(Image.fromarray(smooth_rgb(16, 16, np.random.default_rng(3))), "WEBP", quality=80)
    tiny_tiff = save(Image.fromarray(np.zeros((8, 8, 3), np.uint8)), "TIFF", compression="tiff_lzw")
    # VP8L header: signature 0x2F, then 14-bit width - 1 and height - 1.
    bomb_webp = bytearray(tiny_webp)
    bits = (16383 - 1) | ((16383 - 1) << 14) | (int.from_bytes(bomb_webp[21:25], "little") & ~((1 << 28) - 1))
    bomb_webp[21:25] = bits.to_bytes(4, "little")
    # libwebp cannot tell damaged lossy data from a picture (no checksums), but it does check sizes:
    # the first partition is declared larger than the file (frame tag bits 5..23, RFC 6386 9.1).
    overflow = bytearray(lossy_webp)
    assert overflow[12:16] == b"VP8 "
    tag = int.from_bytes(overflow[20:23], "little")
    overflow[20:23] = ((tag & 0x1F) | (0x7FFFF << 5)).to_bytes(3, "little")
    # A lossless bitstream's Huffman codes are checked: damage in the entropy-coded data is caught.
    damaged = bytearray(save(Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3)).astype(np.uint8)),
                             "WEBP", lossless=True))
    for i in range(30, len(damaged), 3):
        damaged[i] ^= 0xA5
    for name, data in (("overflow", overflow), ("damaged", damaged)):
        try:
            Image.open(io.BytesIO(bytes(data))).load()
            raise AssertionError(f"Pillow decodes the {name} WebP")
        except (OSError, SyntaxError, ValueError):
            pass
    webp_tiff_errors = {
        "webp_truncated.webp": lossy_webp[: len(lossy_webp) // 2],
        "webp_partition_overflow.webp": bytes(overflow),
        "webp_lossless_damaged.webp": bytes(damaged),
        "webp_bomb_16383x16383.webp": bytes(bomb_webp),
        "tiff_truncated.tif": tiny_tiff[:-40],
        "tiff_bad_ifd_offset.tif": tiny_tiff[:4] + struct.pack("<I", 0x7FFFFFF0) + tiny_tiff[8:],
        "tiff_bomb_100000x100000.tif": patch_tiff_size(tiny_tiff, 100000, 100000),
        "tiff_zero_width.tif": patch_tiff_size(tiny_tiff, 0, 8),
    }
    if heic is not None:
        webp_tiff_errors["heic_truncated.heic"] = heic[: len(heic) // 2]
    for name, data in webp_tiff_errors.items():
        seed(name, data)
    errors.update(webp_tiff_errors)
    for name, data in errors.items():
        write(name, data)
    manifest["errors"] = sorted(errors)


# ---------------------------------------------------------------- resampling (Pillow BICUBIC)
def make_resize_cases(rng):
    """Pillow's resize(size, BICUBIC, box) outputs on small random images, for exact checks."""
    sources = {
        "resize_src_37x23.rgb": rng.integers(0, 256, size=(23, 37, 3)).astype(np.uint8),
        "resize_src_28x28.rgb": np.repeat(rng.integers(0, 256, size=(28, 28, 1)), 3, -1).astype(np.uint8),
        "resize_src_1x1.rgb": np.array([[[200, 10, 77]]], np.uint8),
    }
    # Sharp edges make the negative lobes overshoot, which exercises the clipping.
    edges = np.zeros((23, 37, 3), np.uint8)
    edges[:, 18:] = 255
    edges[11:, :, 1] = 255
    sources["resize_src_edges_37x23.rgb"] = edges
    for name, array in sources.items():
        write(name, array.tobytes())
    cases = [
        ("resize_src_37x23.rgb", (10, 7), None),              # downscale (antialiased)
        ("resize_src_37x23.rgb", (80, 50), None),             # upscale
        ("resize_src_37x23.rgb", (16, 16), (3, 2, 30, 20)),   # integer box, like the centre crop
        ("resize_src_37x23.rgb", (9, 13), (1.5, 0.25, 20.75, 22.5)),  # fractional box
        ("resize_src_37x23.rgb", (37, 23), None),             # identity
        ("resize_src_37x23.rgb", (37, 11), None),             # vertical pass only
        ("resize_src_37x23.rgb", (12, 23), None),             # horizontal pass only
        ("resize_src_edges_37x23.rgb", (50, 30), None),
        ("resize_src_edges_37x23.rgb", (11, 9), (2, 1, 35, 22)),
        ("resize_src_28x28.rgb", (64, 64), None),             # 28x28 medical-scan size, upscaled
        ("resize_src_28x28.rgb", (64, 64), (2, 2, 26, 26)),   # its centre crop (c = 24)
        ("resize_src_1x1.rgb", (5, 3), None),
    ]
    for i, (src, size, box) in enumerate(cases):
        im = Image.fromarray(sources[src])
        full = (0, 0) + im.size
        out = np.asarray(im.resize(size, Image.BICUBIC, box=box or full))
        name = f"resize_case{i}.rgb"
        write(name, out.tobytes())
        manifest["resize"].append({"source": src, "sourceWidth": im.size[0], "sourceHeight": im.size[1],
                                   "width": size[0], "height": size[1], "box": list(box or full),
                                   "expected": name})


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    rng = make_pngs()
    make_jpegs(rng)
    make_webps(rng)
    make_tiffs(rng)
    heic = make_heics(rng)
    make_errors(heic)
    make_resize_cases(np.random.default_rng(7))
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
