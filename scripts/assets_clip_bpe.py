"""CLIP's BPE vocabulary as Hugging Face's vocab.json / merges.txt (standard library only).

The source is `bpe_simple_vocab_16e6.txt.gz`, the file OpenAI's CLIP repository ships (open_clip ships
the same bytes): a version line, then one merge per line ("t h", "th e</w>", ...), 262,144 merges of
which CLIP uses the first 48,894 (49152 - 256 - 2). CLIP's SimpleTokenizer builds its vocabulary from
it as: the 256 byte symbols of GPT-2's byte-to-unicode table in table order, the same 256 with `</w>`,
one token per used merge (the two halves joined), then `<|startoftext|>` (49406) and `<|endoftext|>`
(49407): 49,408 tokens. The Hugging Face `openai/clip-*` tokenizers hold exactly that vocabulary and
those merges.

Output bytes are what Hugging Face `tokenizers` writes for a BPE model (`model.save(dir)`), the format of
the files on the hub: vocab.json is one line of compact JSON in id order, UTF-8, no trailing newline
(862,328 bytes); merges.txt is `#version: 0.2` then one "left right" line per merge in rank order, each
ending in a newline (524,619 bytes). Both are deterministic, so weights/manifest.json pins their sha256.
"""

from __future__ import annotations

import gzip
import json
import zlib

# CLIP's vocabulary size: 256 bytes, 256 bytes + </w>, the merges, two special tokens.
VOCABULARY_SIZE = 49152 + 256
MERGES_USED = 49152 - 256 - 2
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"


class BPEFileError(ValueError):
    """The BPE file is not CLIP's format; the message names the line."""


def bytes_to_unicode() -> list[str]:
    """GPT-2's table: the symbol of each byte, in the table's order (printable bytes first, then the rest
    mapped to U+0100 onwards). Index i is *not* byte i; `byte_order()[i]` is."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            symbols.append(256 + extra)
            extra += 1
    return [chr(code) for code in symbols]


def read_merges(gz_data: bytes, count: int = MERGES_USED) -> list[tuple[str, str]]:
    """The first `count` merges of a bpe_simple_vocab-style gzip file (line 1 is a version line)."""
    try:
        text = gzip.decompress(gz_data).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise BPEFileError(f"not a gzip-compressed UTF-8 text: {error}") from None
    lines = text.removesuffix("\n").split("\n")
    if not lines[0].endswith("#version: 0.2"):
        raise BPEFileError(f"line 1 is {lines[0][:60]!r}, expected a '#version: 0.2' line")
    if len(lines) - 1 < count:
        raise BPEFileError(f"{len(lines) - 1} merge lines, CLIP needs {count}")
    merges = []
    for number, line in enumerate(lines[1:count + 1], start=2):
        parts = line.split()
        if len(parts) != 2 or " ".join(parts) != line:
            raise BPEFileError(f"line {number} is {line!r}, expected two symbols separated by one space")
        merges.append((parts[0], parts[1]))
    return merges


def vocabulary(merges: list[tuple[str, str]]) -> dict[str, int]:
    """Token -> id in SimpleTokenizer's order."""
    symbols = bytes_to_unicode()
    tokens = symbols + [s + END_OF_WORD for s in symbols] + [left + right for left, right in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        seen: set[str] = set()
        duplicate = next(t for t in tokens if t in seen or seen.add(t))
        raise BPEFileError(f"merges produce the token {duplicate!r} twice")
    return vocab


def vocab_json(gz_data: bytes, count: int = MERGES_USED) -> bytes:
    vocab = vocabulary(read_merges(gz_data, count))
    return json.dumps(vocab, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def merges_txt(gz_data: bytes, count: int = MERGES_USED) -> bytes:
    merges = read_merges(gz_data, count)
    return ("#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges)).encode("utf-8")
