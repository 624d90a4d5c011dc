"""Dumps tokenizer edge cases for the Swift WordPiece tests from the Hugging Face `tokenizers` reference.

Run in a virtualenv with `tokenizers` (scripts/bench-text-peers creates .venv-text with it):
    .venv-text/bin/python scripts/make_minilm_goldens.py
Reads weights/all-minilm-l6-v2/tokenizer.json (local file, no hub access) and writes
Tests/Golden/minilm/tokenizer_cases.json: text, ids (with [CLS]/[SEP], truncated to 256 as
sentence-transformers does) and tokens, for inputs chosen to hit each rule of the BERT pipeline.
"""
import json
import os

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    'empty': '',
    'only_spaces': ' \t\n\r  ',
    'accents': 'Crème Brûlée à la Française, São Paulo, Zürich, Ångström, naïve',
    'accent_combining': 'Cafe\u0301 re\u0301sume\u0301',
    'uppercase_unicode': 'ÀÉÎÕÜ ΣΟΦΊΑ İstanbul straße',
    'cjk': '我爱北京天安门 and 東京タワー and 서울',
    'cjk_extension': '\U00020000\U0002A700\U0002B820\U0002CEA0\uF900 mixed\u4E00text',
    'punctuation_ascii': 'a!b"c#d$e%f&g\'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}~',
    'punctuation_unicode': '“quoted” — dash… «guillemets» ¿qué? ¡sí! 「括弧」・',
    'symbols': '½ ﬁ © ® ™ € £ ¥ § ° ± × ÷ → ★ ☺ 😀',
    'control_chars': 'tab\there\u0000nul\u0007bell\u200bzwsp\u00adsoft\ufeffbom\ufffdrepl\u0085nel',
    'whitespace_variants': 'no\u00a0break\u2003em\u3000ideo\u2028line',
    'numbers': '3.14159 1,000,000 2024-01-01 12:30pm #1 @user',
    'long_word': 'x' * 101 + ' ok ' + 'y' * 100,
    'long_word_101_accents': 'é' * 101,
    'unknown_pieces': 'qzxjvq ⟁⟁⟁ ꙮ',
    'wordpiece_split': 'unaffable transformers tokenization antidisestablishmentarianism',
    'contractions': "don't won't y'all it's",
    'urls': 'https://example.com/path?q=1&r=2 user@example.org',
    'truncation': ' '.join(f'word{i}' for i in range(400)),
    'truncation_exact': ' '.join(['cat'] * 254),
    'truncation_one_over': ' '.join(['cat'] * 255),
}


def main():
    tok = Tokenizer.from_file(os.path.join(ROOT, 'weights/all-minilm-l6-v2/tokenizer.json'))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    out = []
    for name, text in CASES.items():
        enc = tok.encode(text)
        out.append({'name': name, 'text': text, 'input_ids': enc.ids, 'tokens': enc.tokens})
    path = os.path.join(ROOT, 'Tests/Golden/minilm/tokenizer_cases.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'generator': 'tokenizers ' + __import__('tokenizers').__version__ + ', weights/all-minilm-l6-v2/tokenizer.json, truncation 256',
                   'cases': out}, f, ensure_ascii=False, indent=1)
        f.write('\n')
    print(f'wrote {len(out)} cases to {path}')


if __name__ == '__main__':
    main()
