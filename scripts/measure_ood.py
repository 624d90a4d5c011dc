"""How well a head's "unknown" flag works on a real case: a BUSI (breast ultrasound) head given
ImageNet-like photos (imagenette). Prints a Markdown table for BENCHMARKS.md.

1. BUSI train/ (625 images, 3 classes) is split per class, seeded: 80% for `headtune train` (which
   itself holds out 20% of that as validation: the OOD threshold is the 95th percentile of those
   validation images' scores), 20% kept back as in-distribution test images the head never saw.
2. `headtune classify --head` on the held-back BUSI images and the 634 imagenette dev images.
3. AUROC of the OOD score (imagenette = positive), and at the head's own threshold: the share of BUSI
   test images wrongly flagged unknown and the share of imagenette images not flagged.

    python3 scripts/measure_ood.py [--headtune .build/release/headtune] [--work bench-data/ood]
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared', 'datasets')


def images(folder):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                  if f.lower().endswith(('.png', '.jpg', '.jpeg')) and not f.startswith('.'))


def auroc(negatives, positives):
    """Probability that a random positive scores above a random negative (ties count half)."""
    ranked = sorted([(s, 0) for s in negatives] + [(s, 1) for s in positives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2
        rank_sum += average_rank * sum(1 for k in range(i, j) if ranked[k][1] == 1)
        i = j
    p, n = len(positives), len(negatives)
    return (rank_sum - p * (p + 1) / 2) / (p * n)


def main():
    a = argparse.ArgumentParser(description=__doc__)
    a.add_argument('--headtune', default=os.path.join(ROOT, '.build/release/headtune'))
    a.add_argument('--work', default=os.path.join(ROOT, 'bench-data/ood'))
    a.add_argument('--seed', type=int, default=0)
    args = a.parse_args()
    busi, nette = os.path.join(SHARED, 'busi', 'train'), os.path.join(SHARED, 'imagenette', 'dev')
    if not os.path.isdir(busi) or not os.path.isdir(nette):
        sys.exit(f'needs {busi} and {nette} (the shared development datasets)')
    os.makedirs(args.work, exist_ok=True)
    rng = random.Random(args.seed)
    train_rows, held_out = [], []
    for label in sorted(os.listdir(busi)):
        files = images(os.path.join(busi, label))
        rng.shuffle(files)
        cut = round(len(files) * 0.8)
        train_rows += [(os.path.abspath(f), label) for f in files[:cut]]
        held_out += files[cut:]
    manifest = os.path.join(args.work, 'busi-train.csv')
    with open(manifest, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'label'])
        w.writerows(train_rows)
    head = os.path.join(args.work, 'busi.head')
    subprocess.run([args.headtune, 'train', manifest, '--out', head, '--cache', os.path.join(args.work, 'features.sqlite')],
                   check=True, stdout=subprocess.DEVNULL)
    outliers = images(nette)
    records = subprocess.run([args.headtune, 'classify', '--head', head, '--top-k', '1', '--format', 'jsonl', '-'],
                             input='\n'.join(held_out + outliers) + '\n', check=True, capture_output=True, text=True).stdout
    by_path = {r['path']: r for r in map(json.loads, records.splitlines())}
    inside = [by_path[p] for p in held_out]
    outside = [by_path[p] for p in outliers]
    meta = json.loads(subprocess.run([sys.executable, '-c', 'import json,struct,sys; f=open(sys.argv[1],"rb"); '
                                      'n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"]["headtune"])',
                                      head], check=True, capture_output=True, text=True).stdout)
    ood = meta['outOfDistribution']
    auc = auroc([r['ood_score'] for r in inside], [r['ood_score'] for r in outside])
    false_unknown = sum(r['unknown'] for r in inside) / len(inside)
    missed = sum(not r['unknown'] for r in outside) / len(outside)
    print(f'Head: linear, trained on {len(train_rows)} BUSI images (of which {meta["dataset"]["validationImages"]} '
          f'validation); detector: {ood["method"]}, k = {ood["k"]}, bank {ood["bankImages"]} images, threshold '
          f'{ood["threshold"]:.4f} = {ood["percentile"]:g}th percentile of {ood["calibrationImages"]} {ood["calibration"]} images.\n')
    print('| in-distribution test | out-of-distribution | AUROC | BUSI flagged unknown (false alarms) | imagenette not flagged (missed) |')
    print('|---|---|---:|---:|---:|')
    print(f'| BUSI held-out, {len(inside)} images | imagenette dev, {len(outside)} images | {auc:.4f} | '
          f'{false_unknown:.1%} ({sum(r["unknown"] for r in inside)}) | {missed:.1%} ({sum(not r["unknown"] for r in outside)}) |')


if __name__ == '__main__':
    main()
