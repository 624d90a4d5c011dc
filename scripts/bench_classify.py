"""Batch classification, headtune CLI vs a Python peer pipeline, on the same files and machine.

Sets (made once into bench-data/, git-ignored, deterministic):
  small: 1,000 imagenette-like JPEGs: the 634 real 224 px images of ../shared/datasets/imagenette/dev,
         plus 366 of them mirrored and re-encoded (Pillow, quality 90) so every file is distinct.
  large: 200 JPEGs of 3000-4000 px on the long side, made by upscaling 200 of those real photos
         (Pillow bicubic, quality 90): real content, synthetic size.
Job on both sides: every file -> DCT-scaled JPEG decode (Pillow `draft`, libjpeg-turbo in both) ->
224/256 centre crop + antialiased bicubic resize to 224 -> (x - 127) / 128 -> EfficientNet-Lite0 in
batches of 16 on 2 threads -> softmax -> top-5 ImageNet labels -> one JSON line per file.
  headtune: `headtune classify --imagenet --top-k 5 --format jsonl -o FILE` (2 network threads,
            2 decode threads overlapping the network).
  peer:     Pillow decode/resize in a 2-thread pool prefetching the next batch while ONNX Runtime
            (2 intra-op threads) runs ../shared/reference/effnet_lite0.onnx on the current one.
Each run is its own process; rounds alternate headtune and the peer; images/s = files / wall time
(process start to exit, model loading included); peak RSS = the process's VmHWM.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from bench_common import peak_rss_mb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')


def make_sets(out):
    from PIL import Image, ImageOps
    dev = os.path.join(SHARED, 'datasets', 'imagenette', 'dev')
    originals = sorted(os.path.join(d, f) for d, _, fs in os.walk(dev) for f in fs if f.lower().endswith(('.jpg', '.jpeg')))
    if not originals:
        sys.exit(f'{dev} has no JPEGs: the benchmark needs the shared imagenette set')
    small, large = os.path.join(out, 'small'), os.path.join(out, 'large')
    if not os.path.isdir(small) or len(os.listdir(small)) != 1000:
        os.makedirs(small, exist_ok=True)
        for i in range(1000):
            source = originals[i % len(originals)]
            target = os.path.join(small, f'{i:04d}.jpg')
            if i < len(originals):
                with open(source, 'rb') as f, open(target, 'wb') as g:
                    g.write(f.read())
            else:
                ImageOps.mirror(Image.open(source).convert('RGB')).save(target, quality=90)
    if not os.path.isdir(large) or len(os.listdir(large)) != 200:
        os.makedirs(large, exist_ok=True)
        for i in range(200):
            im = Image.open(originals[(i * 3) % len(originals)]).convert('RGB')
            longest = 3000 + (i * 37) % 1001
            scale = longest / max(im.size)
            im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.BICUBIC).save(
                os.path.join(large, f'{i:03d}.jpg'), quality=90)
    return {'small': small, 'large': large}


def files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


def run_headtune(folder, out, batch, threads):
    cmd = [os.environ.get('HEADTUNE_BIN', os.path.join(ROOT, '.build/release/headtune')), 'classify', '--imagenet', '--top-k', '5', '--format', 'jsonl',
           '--batch-size', str(batch), '--threads', str(threads), '-o', out, folder]
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
    peak = 0.0
    # VmHWM only grows: the last reading before exit is the peak (polled, as /proc goes with the process).
    while p.poll() is None:
        peak = max(peak, peak_rss_mb(p.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f'headtune failed: {p.stderr.read().decode()[-2000:]}')
    return {'seconds': seconds, 'peak_rss_mb': peak}


def run_peer(folder, out, batch, threads):
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', folder, '--out', out, '--batch', str(batch),
           '--threads', str(threads)]
    start = time.perf_counter()
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    result['seconds'] = time.perf_counter() - start
    return result


def worker(folder, out, batch, threads):
    """The peer pipeline, in its own process."""
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    labels = [l.split(',')[0] for l in open(os.path.join(SHARED, 'reference', 'imagenet_classes.txt')).read().splitlines()]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.path.join(SHARED, 'reference', 'effnet_lite0.onnx'), options,
                                   providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name

    def prepare(path):
        try:
            im = Image.open(path)
            im.draft('RGB', (256, 256))  # DCT scaling: the smallest scale keeping both sides >= 256
            im = im.convert('RGB')
            w, h = im.size
            c = int(224 / 256 * min(w, h))
            x0, y0 = (w - c + 1) // 2, (h - c + 1) // 2
            u8 = np.asarray(im.resize((224, 224), Image.BICUBIC, box=(x0, y0, x0 + c, y0 + c)), dtype=np.float32)
            return ((u8 - 127) / 128).transpose(2, 0, 1)
        except Exception as e:  # noqa: BLE001 - reported per file, like headtune
            return str(e)

    paths = files(folder)
    chunks = [paths[i:i + batch] for i in range(0, len(paths), batch)]
    with ThreadPoolExecutor(threads) as pool, open(out, 'w') as sink:
        pending = [pool.submit(prepare, p) for p in chunks[0]]
        for b, chunk in enumerate(chunks):
            inputs = [f.result() for f in pending]
            if b + 1 < len(chunks):
                pending = [pool.submit(prepare, p) for p in chunks[b + 1]]
            good = [x for x in inputs if not isinstance(x, str)]
            probabilities = []
            if good:
                logits = session.run(['logits'], {name: np.stack(good)})[0]
                e = np.exp(logits - logits.max(axis=1, keepdims=True))
                probabilities = e / e.sum(axis=1, keepdims=True)
            row = 0
            for path, x in zip(chunk, inputs):
                if isinstance(x, str):
                    sink.write(json.dumps({'path': path, 'error': x}) + '\n')
                    continue
                p = probabilities[row]
                row += 1
                top = np.argsort(-p)[:5]
                sink.write(json.dumps({'path': path, 'predictions': [
                    {'label': labels[i], 'index': int(i), 'score': float(p[i])} for i in top]}) + '\n')
    print(json.dumps({'peak_rss_mb': peak_rss_mb(), 'onnxruntime': ort.__version__}))


def agreement(a, b):
    top = lambda path: [json.loads(l)['predictions'][0]['index'] for l in open(path)]
    x, y = top(a), top(b)
    return sum(i == j for i, j in zip(x, y)) / max(len(x), 1)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--sets', default='small,large')
    p.add_argument('--data', default=os.path.join(ROOT, 'bench-data'))
    p.add_argument('--worker', metavar='FOLDER', help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.worker, a.out, a.batch, a.threads)
    sets = make_sets(a.data)
    scratch = os.path.join(a.data, 'out')
    os.makedirs(scratch, exist_ok=True)
    rows = []
    for name in a.sets.split(','):
        folder, count = sets[name], len(files(sets[name]))
        ours, theirs = [], []
        for r in range(a.rounds):
            ours.append(run_headtune(folder, os.path.join(scratch, f'{name}-headtune.jsonl'), a.batch, a.threads))
            theirs.append(run_peer(folder, os.path.join(scratch, f'{name}-peer.jsonl'), a.batch, a.threads))
            print(f'{name} round {r + 1}: headtune {count / ours[-1]["seconds"]:.1f} img/s, '
                  f'peer {count / theirs[-1]["seconds"]:.1f} img/s', file=sys.stderr)
        h = statistics.median(count / r['seconds'] for r in ours)
        o = statistics.median(count / r['seconds'] for r in theirs)
        same = agreement(os.path.join(scratch, f'{name}-headtune.jsonl'), os.path.join(scratch, f'{name}-peer.jsonl'))
        rows.append((name, count, h, max(r['peak_rss_mb'] for r in ours), o, max(r['peak_rss_mb'] for r in theirs), h / o, same,
                     [round(count / r['seconds'], 1) for r in ours], [round(count / r['seconds'], 1) for r in theirs]))
    load = os.getloadavg()
    print(f'Date: {datetime.date.today()}; nproc: {os.cpu_count()}; load average at the end {load[0]:.1f}; '
          f'{a.rounds} alternating rounds, medians; batch {a.batch}, {a.threads} threads each side.\n')
    print('| set | files | headtune images/s | headtune peak RSS MB | peer images/s | peer peak RSS MB | ratio | same top-1 | headtune rounds | peer rounds |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---|---|')
    for n, c, h, hr, o, orr, ratio, same, hs, os_ in rows:
        print(f'| {n} | {c} | {h:.1f} | {hr:.0f} | {o:.1f} | {orr:.0f} | {ratio:.2f}x | {same:.1%} | {hs} | {os_} |')


if __name__ == '__main__':
    main()
