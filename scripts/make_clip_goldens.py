#!/usr/bin/env python3
"""CLIP tokenizer goldens: Tests/ModelsTests/Resources/clip_tokenizer_golden.json.

    scripts/check-clip goldens          # or: .venv-clip/bin/python scripts/make_clip_goldens.py

The reference is transformers' fast CLIP tokenizer (in transformers 5 `CLIPTokenizer` *is* the fast one,
`CLIPTokenizerFast` an alias; CLIPProcessor uses it), called with truncation=True, max_length=77, and
loaded from weights/clip-bpe/{vocab.json,merges.txt} plus the tokenizer.json that transformers'
converter writes for them (4.57.6 CLIPTokenizerFast.save_pretrained, as on the hub's CLIP folders): there
the special tokens are `normalized: true`, so `<|STARTOFTEXT|>` is matched after lowercasing. Loaded
from vocab.json + merges.txt alone, transformers 5 marks them `normalized: false` and splits such text
into BPE pieces; those ids are recorded as "fast_vocab_only" where they differ. Three more tokenizers
run in .venv-clip-slow (transformers 4.57.6) and are recorded only where they differ from the fast one:
  - "slow": transformers 4.57.6's pure-Python CLIPTokenizer with ftfy installed (its default then:
    ftfy.fix_text, whitespace_clean, lower), and "slow_no_ftfy": the same without ftfy (BasicTokenizer
    cleaning: control characters dropped, CJK ideographs spaced out, lowercase);
  - "openai": OpenAI's SimpleTokenizer (open_clip's copy of openai/CLIP simple_tokenizer.py, with
    OpenAI's special-token names): ftfy.fix_text, html.unescape twice, whitespace_clean, lower. This is
    what CLIP was trained with.

Edge cases are committed in full. The flickr8k captions are research-use data that must not be
committed (../shared/datasets/README.md), and token ids decode back to the lowercased caption, so for
them only sha256 digests are committed: of the caption text and of the fast ids; the Swift test reads
the captions from ../shared/datasets at test time. `--dump-captions FILE` writes the full ids to a
file outside the repository for debugging a mismatch.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOCAB_DIR = ROOT / "weights" / "clip-bpe"
OUT = ROOT / "Tests" / "ModelsTests" / "Resources" / "clip_tokenizer_golden.json"
DATASETS = ROOT.parent / "shared" / "datasets"
CAPTION_SETS = ("flickr8k-dev", "flickr8k-train")
SLOW_PYTHON = ROOT / ".venv-clip-slow" / "bin" / "python"
OPEN_CLIP_TOKENIZER = ROOT / ".venv-clip" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "open_clip" / "tokenizer.py"
MAX_LENGTH = 77


def edge_cases() -> list[tuple[str, str]]:
    rng = random.Random(13)
    random_letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10_000))
    return [
        ("simple", "a photo of a cat"),
        ("caption-style", "A child playing on a rope net ."),
        ("uppercase", "A PHOTO OF A CAT"),
        ("accents", "Crème brûlée à la café, naïve façade"),
        ("german", "ÜBER die Straße"),
        ("dotted-capital-i", "İstanbul"),
        ("greek-final-sigma", "ΟΔΟΣ ΣΟΦΊΑ"),
        ("combining-acute-nfc", "cafe\u0301"),
        ("combining-without-precomposed", "q\u0301 x\u0323\u0302"),
        ("nfd-hangul-jamo", "\u1100\u1161\u11a8"),
        ("cjk", "我爱北京天安门"),
        ("japanese", "こんにちは世界、カタカナ"),
        ("korean", "안녕하세요"),
        ("cyrillic", "Привет, мир"),
        ("arabic", "مرحبا بالعالم"),
        ("devanagari-marks", "नमस्ते"),
        ("emoji", "I ❤️ my 🐶!"),
        ("emoji-skin-tone", "👍🏽 thumbs"),
        ("emoji-zwj-family", "👨\u200d👩\u200d👧"),
        ("flag", "🇫🇷 france"),
        ("fullwidth", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３"),
        ("ligature", "ﬁne ﬂour"),
        ("whitespace-runs", "a   photo    of  a     cat"),
        ("leading-trailing-spaces", "   cat   "),
        ("only-spaces", "     "),
        ("tabs-newlines", "a\tphoto\n\nof\r\na cat\t\n"),
        ("vertical-tab-form-feed", "a\u000bb\u000cc"),
        ("nbsp", "\u00a0nbsp\u00a0here\u00a0"),
        ("ideographic-space", "\u3000ideographic\u3000space"),
        ("line-paragraph-separators", "line\u2028sep\u2029para"),
        ("next-line", "next\u0085line"),
        ("other-unicode-spaces", "a\u1680b\u2002c\u2009d\u202fe\u205ff\u180eg\u2060h\ufeffi"),
        ("zero-width-space", "zero\u200bwidth"),
        ("ascii-separators", "a\u001cb\u001dc\u001ed\u001fe"),
        ("control-characters", "bell\u0007 nul\u0000 del\u007f"),
        ("replacement-character", "bad \ufffd byte"),
        ("html-amp", "fish &amp; chips"),
        ("html-tags", "&lt;b&gt;bold&lt;/b&gt;"),
        ("html-quot-numeric", "&quot;quoted&quot; &#39;single&#39; &#x263A;"),
        ("html-double-escaped", "&amp;amp; &amp;lt;"),
        ("mojibake", "cafÃ© naÃ¯ve"),
        ("smart-quotes", "“smart” ‘quotes’ it’s"),
        ("contractions", "it's don't you're we've i'm you'll he'd"),
        ("contractions-uppercase", "IT'S DON'T YOU'RE WE'VE I'M YOU'LL HE'D"),
        ("contraction-edges", "dogs' bowls ''s 's 'sa o'clock rock'n'roll"),
        ("long-s-and-kelvin", "it'ſ 5\u212a"),
        ("digits", "2024 3.14159 1,000,000 people"),
        ("other-numerals", "٣ ½ Ⅻ x² ①"),
        ("punctuation-runs", "wow!!! ... ?!?! ---> (a) [b] {c}"),
        ("symbols", "$100.00 #hashtag @user a.b.c <html> E=mc² 30°C ∑∫√ ~^_`|\\"),
        ("url", "https://example.com/a-b_c?d=1&e=2"),
        ("empty", ""),
        ("special-start-literal", "<|startoftext|>"),
        ("special-end-literal", "<|endoftext|>"),
        ("special-both", "<|startoftext|><|endoftext|>"),
        ("special-inside-text", "hello <|startoftext|> world a<|endoftext|>b"),
        ("special-uppercase", "<|STARTOFTEXT|> <|EndOfText|>"),
        ("special-near-miss", "<|startoftext| <|endoftext> <startoftext>"),
        ("exactly-75-content-tokens", " ".join(["a"] * 75)),
        ("76-content-tokens", " ".join(["a"] * 76)),
        ("long-sentence", " ".join(["the quick brown fox jumps over the lazy dog"] * 20)),
        ("long-word-10000", random_letters),
        ("repeated-letter-10000", "a" * 10_000),
        ("repeated-pair-5000", "ab" * 5_000),
    ]


# ---------------------------------------------------------------- the slow side (in .venv-clip-slow)


def slow_worker() -> None:
    """Reads {"texts": [...], "vocab_dir": ..., "open_clip_tokenizer": ...} on stdin, writes ids of the slow
    tokenizers (with and without ftfy), the 4.57.6 fast tokenizer and OpenAI's SimpleTokenizer."""
    import importlib.util
    import types

    import transformers
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    from transformers.models.bert.tokenization_bert import BasicTokenizer

    request = json.load(sys.stdin)
    vocab_dir = request["vocab_dir"]
    vocab, merges = os.path.join(vocab_dir, "vocab.json"), os.path.join(vocab_dir, "merges.txt")
    fast4 = CLIPTokenizerFast(vocab, merges)
    if request.get("save_dir"):
        fast4.save_pretrained(request["save_dir"])
        json.dump({"saved": request["save_dir"]}, sys.stdout)
        return
    slow = CLIPTokenizer(vocab, merges)
    assert slow.fix_text is not None, "ftfy must be installed in .venv-clip-slow"
    slow_no_ftfy = CLIPTokenizer(vocab, merges)
    # What CLIPTokenizer.__init__ does when `import ftfy` fails.
    slow_no_ftfy.fix_text = None
    slow_no_ftfy.nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)

    # OpenAI's tokenizer: open_clip's copy imports torch only for its batch API, so a stub suffices.
    sys.modules.setdefault("torch", types.SimpleNamespace(LongTensor=object, Tensor=object))
    spec = importlib.util.spec_from_file_location("openai_clip_tokenizer", request["open_clip_tokenizer"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    openai = module.SimpleTokenizer()
    # open_clip renamed the special tokens <start_of_text>/<end_of_text>; restore OpenAI's names and pattern.
    for old, new in (("<start_of_text>", "<|startoftext|>"), ("<end_of_text>", "<|endoftext|>")):
        openai.encoder[new] = openai.encoder.pop(old)
        openai.cache = {new if k == old else k: (new if v == old else v) for k, v in openai.cache.items()}
    import regex
    openai.pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                               regex.IGNORECASE)
    sot, eot = openai.encoder["<|startoftext|>"], openai.encoder["<|endoftext|>"]

    def openai_ids(text: str) -> list[int]:
        tokens = [sot] + openai.encode(text) + [eot]
        if len(tokens) > MAX_LENGTH:
            tokens = tokens[:MAX_LENGTH]
            tokens[-1] = eot
        return tokens

    def hf(tokenizer, text: str) -> list[int]:
        return tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]

    results = [{"slow": hf(slow, t), "slow_no_ftfy": hf(slow_no_ftfy, t), "fast_4": hf(fast4, t), "openai": openai_ids(t)}
               for t in request["texts"]]
    import ftfy
    json.dump({"versions": {"transformers": transformers.__version__, "ftfy": ftfy.__version__, "regex": regex.__version__},
               "results": results}, sys.stdout)


def run_slow(texts: list[str], save_dir: str | None = None) -> dict:
    if not SLOW_PYTHON.exists():
        sys.exit(f"{SLOW_PYTHON} is missing: run scripts/check-clip first")
    request = json.dumps({"texts": texts, "vocab_dir": str(VOCAB_DIR), "open_clip_tokenizer": str(OPEN_CLIP_TOKENIZER),
                          "save_dir": save_dir})
    done = subprocess.run([str(SLOW_PYTHON), __file__, "--slow-worker"], input=request, capture_output=True, text=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        sys.exit(f"slow worker failed:\n{done.stderr}")
    return json.loads(done.stdout)


# ---------------------------------------------------------------- the fast side (in .venv-clip)


DIGEST_HEX_DIGITS = 16


def text_digest(text: str) -> str:
    """The first 16 hex digits of the sha256 of the UTF-8 text (64 bits: enough to tell two apart)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_HEX_DIGITS]


def ids_digest(ids: list[int]) -> str:
    """text_digest of the ids written as decimal numbers joined by commas, e.g. "49406,320,49407"."""
    return text_digest(",".join(map(str, ids)))


def read_captions() -> list[tuple[str, str]]:
    captions = []
    for name in CAPTION_SETS:
        path = DATASETS / name / "captions.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                captions.append((f"{name}/{row['image']}#{row['caption_index']}", row["caption"]))
    return captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump-captions", type=Path, help="also write every caption's text and fast ids here (not in the repo)")
    args = parser.parse_args()
    if args.slow_worker:
        return slow_worker()

    import tokenizers
    import transformers
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    assert CLIPTokenizerFast is CLIPTokenizer, "transformers 5: CLIPTokenizerFast is an alias of CLIPTokenizer"
    with tempfile.TemporaryDirectory() as converted:
        run_slow([], save_dir=converted)
        fast = CLIPTokenizer.from_pretrained(converted)
    vocab_only = CLIPTokenizer.from_pretrained(str(VOCAB_DIR))
    for tokenizer in (fast, vocab_only):
        assert (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (49408, 49406, 49407, 49407)

    def encode(text: str, tokenizer=fast) -> list[int]:
        return tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]

    cases = edge_cases()
    captions = read_captions()
    if len(captions) != 3500:
        sys.exit(f"expected 3,500 flickr8k captions in {DATASETS}, read {len(captions)}")
    slow = run_slow([text for _, text in cases] + [text for _, text in captions])
    slow_results = slow["results"]

    def differences(fast_ids: list[int], other: dict) -> dict:
        return {f"{kind}_input_ids": ids for kind, ids in other.items() if kind != "fast_4" and ids != fast_ids}


    case_entries = []
    for (name, text), other in zip(cases, slow_results):
        ids = encode(text)
        if other["fast_4"] != ids:
            sys.exit(f"case {name}: transformers 4.57.6 CLIPTokenizerFast gives {other['fast_4']}, 5.x gives {ids}")
        entry = {"name": name, "text": text, "input_ids": ids,
                 "untruncated_length": len(fast(text)["input_ids"]),
                 "tokens": fast.convert_ids_to_tokens(ids) if len(text) <= 200 else None}
        entry.update(differences(ids, {"fast_vocab_only": encode(text, vocab_only), **other}))
        case_entries.append(entry)

    caption_entries, dump = [], []
    caption_differences = {"fast_vocab_only": [], "slow": [], "slow_no_ftfy": [], "openai": []}
    for (key, text), other in zip(captions, slow_results[len(cases):]):
        ids = encode(text)
        other = {"fast_vocab_only": encode(text, vocab_only), **other}
        if other["fast_4"] != ids:
            sys.exit(f"caption {key}: transformers 4.57.6 CLIPTokenizerFast differs from 5.x")
        caption_entries.append(f"{key} {text_digest(text)} {ids_digest(ids)} {len(ids)}")
        for kind in caption_differences:
            if other[kind] != ids:
                caption_differences[kind].append({"key": key, "ids_digest": ids_digest(other[kind])})
        dump.append({"key": key, "text": text, "input_ids": ids})

    if args.dump_captions:
        args.dump_captions.write_text(json.dumps(dump, ensure_ascii=False, indent=0))

    vocab_sha = {name: hashlib.sha256((VOCAB_DIR / name).read_bytes()).hexdigest() for name in ("vocab.json", "merges.txt")}
    golden = {
        "about": "CLIP tokenizer reference ids written by scripts/make_clip_goldens.py (see its docstring). input_ids are "
                 "transformers' fast CLIP tokenizer with the converter's tokenizer.json (special tokens normalized: true), "
                 "truncation=True, max_length=77; fast_vocab_only_input_ids (transformers 5 from vocab.json + merges.txt "
                 "alone), slow_input_ids (transformers "
                 "4.57.6 slow CLIPTokenizer with ftfy), slow_no_ftfy_input_ids (the same without ftfy) and "
                 "openai_input_ids (OpenAI's SimpleTokenizer) appear only where they differ from input_ids. Captions: "
                 "only digests (the first 16 hex digits of the sha256 of the caption's UTF-8 text, and of the fast ids "
                 "written as decimals joined by commas) because the flickr8k captions may not be committed; the test "
                 "reads them from ../shared/datasets.",
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "slow": slow["versions"]},
        "vocabulary": {"dir": "weights/clip-bpe", **{f"{k}_sha256": v for k, v in vocab_sha.items()}},
        "max_length": MAX_LENGTH,
        "start_of_text_id": 49406,
        "end_of_text_id": 49407,
        "cases": case_entries,
        "captions": {
            "source": [f"../shared/datasets/{name}/captions.csv" for name in CAPTION_SETS],
            "count": len(caption_entries),
            "entry_format": "KEY TEXT_DIGEST IDS_DIGEST LENGTH, KEY = <folder>/<image>#<caption_index>",
            "differences": {kind: {"count": len(v), "entries": v} for kind, v in caption_differences.items()},
            "entries": caption_entries,
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One line per caption keeps the file small; the edge cases stay readable.
    entries = golden["captions"].pop("entries")
    text = json.dumps(golden, ensure_ascii=False, indent=1)
    assert text.endswith("\n }\n}")
    lines = ",\n".join("  " + json.dumps(e) for e in entries)
    text = text[: -len("\n }\n}")] + ',\n  "entries": [\n' + lines + "\n  ]\n }\n}"
    json.loads(text)
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size:,} bytes): {len(case_entries)} cases, {len(caption_entries)} captions")
    for entry in case_entries:
        kinds = [k.removesuffix("_input_ids") for k in entry if k.endswith("_input_ids") and k != "input_ids"]
        if kinds:
            print(f"  {entry['name']}: differs from fast in {', '.join(kinds)}")
    for kind, v in caption_differences.items():
        print(f"  captions: {kind} differs from fast in {len(v)}")


if __name__ == "__main__":
    main()
