"""Heads on int8 features (issue 15): for cars49, busi and pneumoniamnist, the default `headtune train`
head trained on fp32 features and on int8 features, and measured on held-out images with fp32 and with
int8 features; plus the 1000-way ImageNet classifier's top-1/top-5 on imagenette/dev, fp32 vs int8.

Splits: cars49/train and busi/train are split 80/20 per class (seeded); the head trains on the 80%
(with its own default validation split inside) and is measured on the 20%. pneumoniamnist trains on
train/ and is measured on its official val/ split. The int8 file is made once with
`headtune quantize --calibration CALIBRATION` (default: 200 images of flickr8k-train, photos that
none of these sets contain), the way a user makes one file for every head.

    python3 scripts/measure_int8_heads.py [--headtune .build/release/headtune] [--work bench-data/int8]
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure_ood import images  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared', 'datasets')


def by_class(folder):
    return {c: images(os.path.join(folder, c)) for c in sorted(os.listdir(folder))
            if os.path.isdir(os.path.join(folder, c))}


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'label'])
        w.writerows(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--headtune', default=os.path.join(ROOT, '.build/release/headtune'))
    p.add_argument('--work', default=os.path.join(ROOT, 'bench-data', 'int8'))
    p.add_argument('--calibration', default=os.path.join(SHARED, 'flickr8k-train'))
    p.add_argument('--images', type=int, default=200)
    p.add_argument('--datasets', default='cars49,busi,pneumoniamnist')
    p.add_argument('--folds', type=int, default=1,
                   help='cars49/busi: 1 = one seeded 80/20 split; K > 1 = K-fold, every image held out once (pooled accuracy)')
    a = p.parse_args()
    if not os.path.isdir(SHARED):
        sys.exit(f'measure_int8_heads: {SHARED} not found (the shared datasets)')
    os.makedirs(a.work, exist_ok=True)
    cache = os.path.join(a.work, 'features.sqlite')
    int8_file = os.path.join(a.work, 'efficientnet-lite0.int8.safetensors')
    run = lambda *args: subprocess.run([a.headtune, *args], check=True, capture_output=True, text=True).stdout
    run('quantize', '--calibration', a.calibration, '--images', str(a.images), '--out', int8_file)
    int8 = ['--precision', 'int8', '--quantized', int8_file]

    def splits(name):
        """(train, test) lists of (path, class) per fold."""
        if name == 'pneumoniamnist':
            return [([(f, c) for c, fs in by_class(os.path.join(SHARED, name, 'train')).items() for f in fs],
                     [(f, c) for c, fs in by_class(os.path.join(SHARED, name, 'val')).items() for f in fs])]
        rng = random.Random(f'int8-{name}')
        classes = by_class(os.path.join(SHARED, name, 'train'))
        if a.folds <= 1:  # one 80/20 split per class
            train, test = [], []
            for c, fs in classes.items():
                fs = list(fs)
                rng.shuffle(fs)
                cut = round(len(fs) * 0.8)
                train += [(f, c) for f in fs[:cut]]
                test += [(f, c) for f in fs[cut:]]
            return [(train, test)]
        parts = [[] for _ in range(a.folds)]
        for c, fs in classes.items():
            fs = list(fs)
            rng.shuffle(fs)
            for i, f in enumerate(fs):
                parts[i * a.folds // len(fs)].append((f, c))
        return [([x for j, part in enumerate(parts) if j != k for x in part], parts[k]) for k in range(a.folds)]

    rows = []
    for name in a.datasets.split(','):
        correct = [0, 0, 0]
        n_train = n_test = 0
        for fold, (train, test) in enumerate(splits(name)):
            work = os.path.join(a.work, name if a.folds <= 1 else f'{name}-fold{fold}')
            os.makedirs(work, exist_ok=True)
            train_csv, test_csv = os.path.join(work, 'train.csv'), os.path.join(work, 'test.csv')
            write_csv(train_csv, [(os.path.abspath(f), c) for f, c in train])
            write_csv(test_csv, [(os.path.abspath(f), c) for f, c in test])
            heads = {}
            for precision, extra in [('fp32', []), ('int8', int8)]:
                heads[precision] = os.path.join(work, f'{precision}.head')
                run('train', train_csv, '--out', heads[precision], '--cache', cache, '--seed', '0', *extra)

            def accuracy(head, extra):
                return json.loads(run('evaluate', '--head', head, test_csv, '--format', 'json', '--cache', cache, *extra))['accuracy']
            for i, (head, extra) in enumerate([(heads['fp32'], []), (heads['fp32'], int8), (heads['int8'], int8)]):
                correct[i] += round(accuracy(head, extra) * len(test))
            n_train += len(train)
            n_test += len(test)
        figures = tuple(c / n_test for c in correct)
        rows.append((name + (f' ({a.folds}-fold)' if a.folds > 1 and name != 'pneumoniamnist' else ''),
                     n_train // max(1, len(splits(name))), n_test) + figures)
        print(f'{name}: fp32 head fp32 {figures[0]:.4f}, fp32 head int8 {figures[1]:.4f}, int8 head int8 {figures[2]:.4f}',
              file=sys.stderr)

    print('| dataset | train images | held-out images | fp32 head, fp32 features | fp32 head, int8 features | int8 head, int8 features |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, n_train, n_test, f, fi, i in rows:
        print(f'| {name} | {n_train} | {n_test} | {f:.4f} | {fi:.4f} ({100 * (fi - f):+.1f}) | {i:.4f} ({100 * (i - f):+.1f}) |')


if __name__ == '__main__':
    main()
