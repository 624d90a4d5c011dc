"""Alternates headtune and ONNX Runtime on a CLIP folder's two towers (same batch sizes, 2 threads).

    scripts/bench-clip-peers MODEL_DIR [--rounds 3] [--seconds 4]

Each round runs `headtune bench backbone --model DIR` (image tower: pixels -> projected embedding) and
`headtune bench text --model DIR` (text tower: padded ids -> normalized embedding, tokenization excluded)
in their own processes, then ONNX Runtime on the same towers exported by scripts/clip_export_onnx.py
(the reference's own graphs, fp32) on inputs of the same shapes; medians over rounds, peak RSS per process.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from bench_common import cpu_model, peak_rss_mb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def headtune(kind, model, batch, threads, seconds):
    out = subprocess.run([os.path.join(ROOT, '.build/release/headtune'), 'bench', kind, '--model', model, '--batch', str(batch),
                          '--threads', str(threads), '--seconds', str(seconds), '--format', 'json'],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    record = json.loads(out)
    return {'per_s': record['images_per_s' if kind == 'backbone' else 'sentences_per_s'], 'rss': record['peak_rss_mb']}


def worker(onnx, kind, batch, threads, seconds, tokens, size):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(onnx, options, providers=['CPUExecutionProvider'])
    if kind == 'backbone':
        rng = np.random.default_rng(12345)
        feeds = {'pixel_values': rng.uniform(-1, 1, size=(batch, 3, size, size)).astype(np.float32)}
    else:
        data = np.load(tokens)
        feeds = {'input_ids': data['input_ids'], 'attention_mask': data['attention_mask']}
    for _ in range(3):
        session.run(None, feeds)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feeds)
        runs += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({'per_s': runs * batch / elapsed, 'rss': peak_rss_mb()}))


def onnxruntime(onnx, kind, batch, threads, seconds, tokens, size):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--worker', onnx, kind, str(batch), str(threads), str(seconds),
                          tokens or '-', str(size)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        onnx, kind, batch, threads, seconds, tokens, size = sys.argv[2:9]
        worker(onnx, kind, int(batch), int(threads), float(seconds), tokens, int(size))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument('model')
    parser.add_argument('--onnx', required=True, help='directory written by clip_export_onnx.py')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=4)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    size = json.load(open(os.path.join(args.model, 'config.json'))).get('vision_config', {}).get('image_size', 224)
    cases = [('backbone', 1), ('backbone', 32), ('text', 1), ('text', 32)]
    results = {(c, side): [] for c in cases for side in ('headtune', 'ort')}
    for _ in range(args.rounds):
        for kind, batch in cases:
            results[((kind, batch), 'headtune')].append(headtune(kind, args.model, batch, args.threads, args.seconds))
            onnx = os.path.join(args.onnx, 'vision.onnx' if kind == 'backbone' else 'text.onnx')
            tokens = os.path.join(args.onnx, f'tokens_{batch}.npz') if kind == 'text' else None
            results[((kind, batch), 'ort')].append(onnxruntime(onnx, kind, batch, args.threads, args.seconds, tokens, size))
            print(f'{kind} batch {batch}: headtune {results[((kind, batch), "headtune")][-1]["per_s"]:.1f}/s, '
                  f'onnxruntime {results[((kind, batch), "ort")][-1]["per_s"]:.1f}/s', file=sys.stderr)
    import onnxruntime as ort
    print(f'nproc {os.cpu_count()}; CPU: {cpu_model()}; onnxruntime {ort.__version__}; {args.threads} threads; '
          f'{args.rounds} alternating rounds of {args.seconds:g} s, medians.\n')
    print('| tower | batch | headtune per s | headtune peak RSS MB | ONNX Runtime per s | ONNX Runtime peak RSS MB '
          '| ratio of medians | per-round ratios | median ratio |')
    print('|---|---:|---:|---:|---:|---:|---:|---|---:|')
    for kind, batch in cases:
        h = results[((kind, batch), 'headtune')]
        o = results[((kind, batch), 'ort')]
        hs, os_ = statistics.median(x['per_s'] for x in h), statistics.median(x['per_s'] for x in o)
        # Each round runs both sides back to back, so a round's ratio sees one state of a noisy host.
        rounds = [a['per_s'] / b['per_s'] for a, b in zip(h, o)]
        print(f'| {"image" if kind == "backbone" else "text"} | {batch} | {hs:.1f} | {max(x["rss"] for x in h):.0f} | '
              f'{os_:.1f} | {max(x["rss"] for x in o):.0f} | {hs / os_:.2f}x | {", ".join(f"{r:.2f}" for r in rounds)} | '
              f'{statistics.median(rounds):.2f}x |')

if __name__ == '__main__':
    main()
