"""How well a head's "unknown" flag catches what a deployed classifier meets: new classes of the same
domain (near-OOD), and images from another domain (far-OOD), per out-of-distribution score and for
combinations of them. Prints Markdown tables for BENCHMARKS.md and writes every figure as JSON.

Near-OOD, for cars49 and imagenette (several seeded class splits): the classes are shuffled and split
into a known half and an unseen half. Each known class's images are split 60/20/20 into train,
validation (a `split` column in the manifest: the head's thresholds come from these) and test. The head
is trained on the known half; its test images (in distribution) are scored against every image of the
unseen classes (out of distribution).

Far-OOD: a head trained on all three BUSI classes (same 60/20/20 split), its test scans against the
imagenette photos and the cars49 photos.

Per score: AUROC (OOD = positive), and at the score's threshold (the 95th percentile of the validation
images' scores, as `headtune train` sets it), the false-alarm rate on the test images and the catch rate
on the OOD images. Single scores are read from the head (`classify --ood-scores`); combinations are
recomputed here exactly as the head computes its `combined` score (each score as (s - median) /
(threshold - median) on the validation images, then max or mean), so every candidate is measured on
the same heads. `headtune evaluate --ood` is run on each head too, and its figures for the stored
scores must equal the ones computed here.

    python3 scripts/measure_openset.py [--headtune .build/release/headtune] [--work bench-data/openset]
                                       [--cache bench-data/openset/features.sqlite] [--seeds 0 1 2]
"""
import argparse
import csv
import itertools
import json
import os
import random
import subprocess
import sys

from measure_ood import auroc, images  # the same AUROC (ties count half) and image walk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared', 'datasets')
SCORES = ['knn', 'class-knn', 'mahalanobis', 'relative-mahalanobis', 'msp', 'energy']
FALSE_ALARM = 0.05


def percentile(values, pct):
    """Nearest rank, as OutOfDistributionDetector.percentileValue."""
    s = sorted(values)
    rank = -(-pct / 100 * len(s) // 1)
    return s[min(max(int(rank), 1), len(s)) - 1]


def float32(x):
    import struct
    return struct.unpack('f', struct.pack('f', x))[0]


def candidates():
    """Every single score, and max/mean over every pair and triple of them."""
    result = [(s, None, [s]) for s in SCORES]
    for size in (2, 3):
        for parts in itertools.combinations(SCORES, size):
            for how in ('max', 'mean'):
                result.append((f'{how}({",".join(parts)})', how, list(parts)))
    return result


def candidate_scores(rows, calibration, how, parts):
    """The combined score of `parts` per record, with per-score (median, scale) from validation."""
    if how is None:
        return [r[parts[0]] for r in rows]
    out = []
    for r in rows:
        values = [(r[p] - calibration[p][0]) / calibration[p][1] for p in parts]
        out.append(max(values) if how == 'max' else sum(values) / len(values))
    return out


def head_metadata(path):
    import struct
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(json.loads(f.read(n))['__metadata__']['headtune'])


def write_csv(path, header, rows):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def link_folder(folder, paths):
    """A folder of symbolic links to `paths` (evaluate --ood takes a folder)."""
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.unlink(os.path.join(folder, old))
    for n, p in enumerate(paths):
        os.symlink(os.path.abspath(p), os.path.join(folder, f'{n:05d}{os.path.splitext(p)[1]}'))


def measure_head(args, name, known, outliers):
    """known: {label: [paths]}; outliers: {set name: [paths]}. Trains, scores, returns figures per candidate."""
    rng = random.Random(f'{name}')
    train_rows, test = [], []
    for label in sorted(known):
        files = list(known[label])
        rng.shuffle(files)
        a, b = round(len(files) * 0.6), round(len(files) * 0.8)
        train_rows += [(os.path.abspath(f), label, 'train') for f in files[:a]]
        train_rows += [(os.path.abspath(f), label, 'validation') for f in files[a:b]]
        test += [(os.path.abspath(f), label) for f in files[b:]]
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    manifest, head = os.path.join(work, 'train.csv'), os.path.join(work, 'head')
    write_csv(manifest, ['path', 'label', 'split'], train_rows)
    write_csv(os.path.join(work, 'test.csv'), ['path', 'label'], test)
    subprocess.run([args.headtune, 'train', manifest, '--out', head, '--cache', args.cache, '--seed', '0'],
                   check=True, stdout=subprocess.DEVNULL)
    meta = head_metadata(head)
    ood = meta['outOfDistribution']
    validation = [(p, label) for p, label, s in train_rows if s == 'validation']
    write_csv(os.path.join(work, 'validation.csv'), ['path', 'label'], validation)
    reports, by_path = {}, {}

    def evaluate(data, ood_folder, scores_file):
        command = [args.headtune, 'evaluate', '--head', head, data, '--format', 'json', '--cache', args.cache,
                   '--ood-scores', scores_file] + (['--ood', ood_folder] if ood_folder else [])
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        with open(scores_file) as f:
            for line in f:
                r = json.loads(line)
                by_path[os.path.realpath(r['path'])] = r['ood_scores']
        return result.get('out_of_distribution')

    evaluate(os.path.join(work, 'validation.csv'), None, os.path.join(work, 'validation-scores.jsonl'))
    for set_name, paths in outliers.items():
        folder = os.path.join(work, f'ood-{set_name}')
        link_folder(folder, paths)
        reports[set_name] = evaluate(os.path.join(work, 'test.csv'), folder, os.path.join(work, f'test-{set_name}-scores.jsonl'))
    validation = [os.path.realpath(p) for p, _ in validation]
    test = [(os.path.realpath(p), label) for p, label in test]
    outliers = {k: [os.path.realpath(p) for p in v] for k, v in outliers.items()}
    val_rows = [by_path[p] for p in validation]
    test_rows = [by_path[p] for p, _ in test]
    calibration = {}
    for s in SCORES:
        values = [r[s] for r in val_rows]
        median, threshold = percentile(values, 50), percentile(values, 100 * (1 - FALSE_ALARM))
        stored = next(c for c in ood['components'] if c['score'] == s)
        # The head's own calibration, recomputed: a check that this script measures what the head does.
        assert abs(stored['threshold'] - threshold) <= 1e-5 * max(1, abs(threshold)), (s, stored, threshold)
        calibration[s] = (median, max(float32(threshold - median), 1e-6 * max(abs(median), 1)))
    figures = {}
    for label, how, parts in candidates():
        val = candidate_scores(val_rows, calibration, how, parts)
        threshold = percentile(val, 100 * (1 - FALSE_ALARM))
        inside = candidate_scores(test_rows, calibration, how, parts)
        entry = {'false_alarm': sum(v > threshold for v in inside) / len(inside)}
        for set_name, paths in outliers.items():
            outside = candidate_scores([by_path[p] for p in paths], calibration, how, parts)
            entry[set_name] = {'auroc': auroc(inside, outside), 'catch': sum(v > threshold for v in outside) / len(outside)}
        figures[label] = entry
    # evaluate --ood must report the same for the scores the head stores (the combined one is computed
    # here in double precision, the head's in single: a last-digit difference may move a tie).
    combine = sorted(ood['combine'], key=SCORES.index)
    stored = {s: s for s in SCORES}
    stored['combined'] = combine[0] if len(combine) == 1 else f'{ood["combination"]}({",".join(combine)})'
    for set_name, report in reports.items():
        for row in report['scores']:
            mine = figures[stored[row['score']]]
            tolerance = 1e-6 if row['score'] != 'combined' else 2e-3
            assert abs(row['auroc'] - mine[set_name]['auroc']) < tolerance, (name, set_name, row, mine)
            assert abs(row['false_alarm_rate'] - mine['false_alarm']) <= tolerance + 1.01 / len(test) * (row['score'] == 'combined'), \
                (name, set_name, row, mine)
    figures['default'] = ood['method'] if ood['method'] != 'combined' else stored['combined']
    info = {'train': sum(s == 'train' for _, _, s in train_rows), 'validation': len(validation), 'test': len(test),
            'outliers': {k: len(v) for k, v in outliers.items()}, 'classes': len(known),
            'validation_accuracy': meta['validation']['accuracy'] if meta.get('validation') else None}
    return info, figures


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument('--headtune', default=os.path.join(ROOT, '.build/release/headtune'))
    a.add_argument('--work', default=os.path.join(ROOT, 'bench-data/openset'))
    a.add_argument('--cache', default=None, help='feature cache (default: WORK/features.sqlite)')
    a.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    a.add_argument('--json', default=None, help='write every figure here (default: WORK/openset.json)')
    args = a.parse_args()
    args.cache = args.cache or os.path.join(args.work, 'features.sqlite')
    os.makedirs(args.work, exist_ok=True)
    folders = {'cars49': os.path.join(SHARED, 'cars49', 'train'), 'imagenette': os.path.join(SHARED, 'imagenette', 'dev'),
               'busi': os.path.join(SHARED, 'busi', 'train')}
    for f in folders.values():
        if not os.path.isdir(f):
            sys.exit(f'needs {f} (the shared development datasets)')
    by_class = {k: {c: images(os.path.join(f, c)) for c in sorted(os.listdir(f)) if os.path.isdir(os.path.join(f, c))}
                for k, f in folders.items()}
    results = {'near': {}, 'far': {}}
    for dataset in ('cars49', 'imagenette'):
        for seed in args.seeds:
            classes = sorted(by_class[dataset])
            random.Random(seed).shuffle(classes)
            known = classes[:(len(classes) + 1) // 2]
            unseen = [p for c in classes[len(known):] for p in by_class[dataset][c]]
            name = f'{dataset}-split{seed}'
            print(f'{name}: {len(known)} known classes, {len(classes) - len(known)} unseen', file=sys.stderr)
            results['near'][name] = measure_head(args, name, {c: by_class[dataset][c] for c in known}, {'unseen': unseen})
    photos = {'imagenette': [p for ps in by_class['imagenette'].values() for p in ps],
              'cars49': [p for ps in by_class['cars49'].values() for p in ps]}
    print('busi: far-OOD', file=sys.stderr)
    results['far']['busi'] = measure_head(args, 'busi', by_class['busi'], photos)
    with open(args.json or os.path.join(args.work, 'openset.json'), 'w') as f:
        json.dump(results, f, indent=1)
    report(results)


def report(results):
    near = results['near']
    far_info, far = results['far']['busi']
    names = [c[0] for c in candidates()]

    def near_mean(label, dataset, key):
        values = [fig[label]['unseen'][key] if key != 'false_alarm' else fig[label]['false_alarm']
                  for name, (_, fig) in near.items() if name.startswith(dataset)]
        return sum(values) / len(values), min(values), max(values)

    rows = []
    for label in names:
        cars, nette = near_mean(label, 'cars49', 'auroc'), near_mean(label, 'imagenette', 'auroc')
        far_auc = min(far[label]['imagenette']['auroc'], far[label]['cars49']['auroc'])
        alarms = [fig[label]['false_alarm'] for _, (_, fig) in near.items()] + [far[label]['false_alarm']]
        rows.append((label, cars, nette, far_auc, near_mean(label, 'cars49', 'catch'), far[label]['imagenette']['catch'],
                     sum(alarms) / len(alarms), min(alarms), max(alarms)))
    eligible = [r for r in rows if r[3] >= 0.99]
    best = max(eligible, key=lambda r: (r[1][0] + r[2][0]) / 2) if eligible else None
    splits = sorted({name.split('-split')[1] for name in near})
    print(f'Class splits (seeds) {", ".join(splits)}; near-OOD AUROC: mean over splits (min-max); far-OOD: BUSI head, '
          f'worst of imagenette and cars49 photos; false alarms on held-out in-distribution test images at the '
          f'threshold set for {FALSE_ALARM:.0%} on validation images, mean (min-max) over all {len(near) + 1} heads.\n')
    print('| score | cars49 unseen AUROC | imagenette unseen AUROC | far-OOD AUROC | cars49 caught | photos caught (BUSI) | false alarms |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    shown = SCORES + ['max(knn,msp)', 'mean(knn,msp)', 'max(knn,energy)', 'max(mahalanobis,msp)', 'max(knn,mahalanobis,msp)',
                      'mean(knn,mahalanobis,msp)', 'max(class-knn,msp)', 'mean(class-knn,msp)', 'mean(mahalanobis,msp)',
                      'max(relative-mahalanobis,msp)', 'mean(relative-mahalanobis,msp)', 'mean(knn,relative-mahalanobis,msp)']
    if best and best[0] not in shown:
        shown.append(best[0])
    for r in rows:
        if r[0] not in shown:
            continue
        mark = ' **(best)**' if best and r[0] == best[0] else ''
        print(f'| {r[0]}{mark} | {r[1][0]:.3f} ({r[1][1]:.3f}-{r[1][2]:.3f}) | {r[2][0]:.3f} ({r[2][1]:.3f}-{r[2][2]:.3f}) | '
              f'{r[3]:.4f} | {r[4][0]:.1%} | {r[5]:.1%} | {r[6]:.1%} ({r[7]:.1%}-{r[8]:.1%}) |')
    if best:
        print(f'\nBest near-OOD mean AUROC with far-OOD AUROC >= 0.99: {best[0]} '
              f'(cars49 {best[1][0]:.3f}, imagenette {best[2][0]:.3f}, far {best[3]:.4f}), of {len(rows)} candidates.')
    print('\nHeads: ' + '; '.join(f'{name}: {info["classes"]} classes, {info["train"]} train / {info["validation"]} validation / '
                                  f'{info["test"]} test, {info["outliers"]["unseen"]} unseen, validation accuracy '
                                  f'{info["validation_accuracy"]:.3f}' for name, (info, _) in near.items())
          + f'; busi: {far_info["train"]} / {far_info["validation"]} / {far_info["test"]}, validation accuracy '
            f'{far_info["validation_accuracy"]:.3f}.')


if __name__ == '__main__':
    main()
