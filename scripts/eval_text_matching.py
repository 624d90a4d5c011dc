"""Zero-shot accuracy and image-text retrieval of headtune's image-text bridges, for BENCHMARKS.md.

    python3 scripts/eval_text_matching.py [--datasets ../shared/datasets] [--methods conse,devise] [--alignment FILE]

Needs a release build (HEADTUNE_BIN, default .build/release/headtune), the weights and the alignment file
(`make align`), or the file given with --alignment (every method reads it: a file from
`headtune align --pairs` also holds the class-name bridge, so conse and devise come from it too). Uses only the CLI:
- zero-shot: `headtune zero-shot --labels-file <class names> --method M <folder>` on imagenette/dev
  (10 classes, names from classes.csv) and cars49/train (49 classes); accuracy = top-1 label == folder's.
- retrieval: `headtune match --texts-file <1000 captions> --method M <200 images>` on flickr8k-dev gives
  the full similarity matrix; Recall@1/5/10 for text->image (the caption's image ranks in the top K) and
  image->text (any of the image's 5 captions ranks in the top K).
Chance levels: 1/classes for accuracy; K/200 for text->image; 1-C(995,K)/C(1000,K) for image->text.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get('HEADTUNE_BIN', os.path.join(ROOT, '.build/release/headtune'))


ALIGNMENT = []


def run(args):
    return subprocess.run([BIN] + args + ALIGNMENT, check=True, capture_output=True, text=True, cwd=ROOT).stdout


def zero_shot(folder, names_by_folder, method, templates):
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
        labels = list(names_by_folder.values())
        f.write('\n'.join(labels) + '\n')
    args = ['zero-shot', '--labels-file', f.name, '--method', method, '--top-k', '1', '--format', 'jsonl', folder]
    for t in templates:
        args += ['--template', t]
    correct = total = 0
    for line in run(args).splitlines():
        r = json.loads(line)
        if 'predictions' not in r:
            continue
        truth = names_by_folder[os.path.basename(os.path.dirname(r['path']))]
        total += 1
        correct += r['predictions'][0]['label'] == truth
    os.unlink(f.name)
    return correct / total, total


def retrieval(root, method):
    rows = list(csv.DictReader(open(os.path.join(root, 'captions.csv'), encoding='utf-8')))
    images = sorted({r['image'] for r in rows})
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False, encoding='utf-8') as f:
        f.write('\n'.join(r['caption'].replace('\n', ' ') for r in rows) + '\n')
    out = run(['match', '--texts-file', f.name, '--method', method, '--format', 'jsonl']
              + [os.path.join(root, 'images', i) for i in images]).splitlines()
    os.unlink(f.name)
    texts = json.loads(out[0])['texts']
    assert len(texts) == len(rows), (len(texts), len(rows))
    sims = {os.path.basename(json.loads(l)['path']): json.loads(l)['similarities'] for l in out[1:]}
    owner = [r['image'] for r in rows]
    t2i, i2t = {1: 0, 5: 0, 10: 0}, {1: 0, 5: 0, 10: 0}
    for c, image in enumerate(owner):
        ranked = sorted(images, key=lambda i: -sims[i][c])
        rank = ranked.index(image)
        for k in t2i:
            t2i[k] += rank < k
    for image in images:
        order = sorted(range(len(rows)), key=lambda c: -sims[image][c])
        first = min(order.index(c) for c in range(len(rows)) if owner[c] == image)
        for k in i2t:
            i2t[k] += first < k
    n_captions, n_images = len(rows), len(images)
    chance_t2i = {k: k / n_images for k in t2i}
    chance_i2t = {k: 1 - math.comb(n_captions - 5, k) / math.comb(n_captions, k) for k in i2t}
    return ({k: v / n_captions for k, v in t2i.items()}, {k: v / n_images for k, v in i2t.items()},
            chance_t2i, chance_i2t)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', default=os.path.join(ROOT, '..', 'shared', 'datasets'))
    p.add_argument('--methods', default='conse,devise')
    p.add_argument('--template', action='append', default=[])
    p.add_argument('--alignment', help='bridge file for every method (default: the one in weights/)')
    a = p.parse_args()
    if a.alignment:
        ALIGNMENT[:] = ['--alignment', os.path.abspath(a.alignment)]
    if not os.path.isdir(a.datasets):
        sys.exit(f'{a.datasets} not found: pass --datasets DIR')
    methods = a.methods.split(',')

    imagenette = {r['wnid']: r['name'] for r in csv.DictReader(open(os.path.join(a.datasets, 'imagenette/classes.csv')))}
    cars = {r['folder']: r['class_name'] for r in csv.DictReader(open(os.path.join(a.datasets, 'cars49/classes.csv')))}
    print('| dataset | classes | images | chance | ' + ' | '.join(f'{m} top-1' for m in methods) + ' |')
    print('|---|---:|---:|---:|' + '---:|' * len(methods))
    for name, folder, names in [('imagenette/dev', 'imagenette/dev', imagenette), ('cars49/train', 'cars49/train', cars)]:
        results = [zero_shot(os.path.join(a.datasets, folder), names, m, a.template) for m in methods]
        print(f'| {name} | {len(names)} | {results[0][1]} | {100 / len(names):.1f}% | '
              + ' | '.join(f'{100 * acc:.1f}%' for acc, _ in results) + ' |', flush=True)

    print('\n| flickr8k-dev (200 images, 1000 captions) | R@1 | R@5 | R@10 |')
    print('|---|---:|---:|---:|')
    chance_printed = False
    for m in methods:
        t2i, i2t, c_t2i, c_i2t = retrieval(os.path.join(a.datasets, 'flickr8k-dev'), m)
        if not chance_printed:
            print('| chance, text -> image | ' + ' | '.join(f'{100 * c_t2i[k]:.1f}%' for k in (1, 5, 10)) + ' |')
            print('| chance, image -> text | ' + ' | '.join(f'{100 * c_i2t[k]:.1f}%' for k in (1, 5, 10)) + ' |')
            chance_printed = True
        print(f'| {m}, text -> image | ' + ' | '.join(f'{100 * t2i[k]:.1f}%' for k in (1, 5, 10)) + ' |')
        print(f'| {m}, image -> text | ' + ' | '.join(f'{100 * i2t[k]:.1f}%' for k in (1, 5, 10)) + ' |', flush=True)


if __name__ == '__main__':
    main()
