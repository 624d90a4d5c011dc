"""Deterministic safetensors encoder (standard library only).

Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the tensor bytes.
Determinism is what lets weights/manifest.json pin the sha256 of our converted file: keys are
sorted, the JSON is compact, the header is space-padded to a multiple of 8 (so every tensor that
starts on an 8-byte boundary of the data section stays aligned in a memory map), and tensors are
laid out back to back in sorted-name order.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Mapping

from assets_pth import Tensor

DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def encode(tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        if name == "__metadata__":
            raise ValueError("a tensor may not be named __metadata__")
        expected = math.prod(tensor.shape) * DTYPE_SIZES[tensor.dtype]
        if len(tensor.data) != expected:
            raise ValueError(f"{name}: {len(tensor.data)} bytes for {tensor.dtype}{list(tensor.shape)}, expected {expected}")
        header[name] = {"dtype": tensor.dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + expected]}
        offset += expected
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *(tensors[name].data for name in sorted(tensors))])


def decode_header(blob: bytes) -> dict:
    """Parse and sanity-check a safetensors header (used to check the files we copy and write)."""
    if len(blob) < 8:
        raise ValueError("shorter than the 8-byte header length")
    (length,) = struct.unpack_from("<Q", blob, 0)
    if 8 + length > len(blob):
        raise ValueError(f"header length {length} runs past the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + length].decode("utf-8"))
    data_size = len(blob) - 8 - length
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        if entry["dtype"] not in DTYPE_SIZES or not 0 <= begin <= end <= data_size:
            raise ValueError(f"{name}: bad dtype or offsets {entry}")
        if end - begin != math.prod(entry["shape"]) * DTYPE_SIZES[entry["dtype"]]:
            raise ValueError(f"{name}: byte length does not match {entry['dtype']}{entry['shape']}")
        spans.append((begin, end, name))
    spans.sort()
    for (_, end_a, a), (begin_b, _, b) in zip(spans, spans[1:]):
        if begin_b < end_a:
            raise ValueError(f"tensors {a} and {b} overlap")
    return header
