"""Alternates headtune and ONNX Runtime on EfficientNet-Lite0, same batch sizes and thread counts.

Each round runs `headtune bench backbone` (a subprocess, so its peak RSS is its own) and then ONNX
Runtime in this process, for the same number of seconds; the table reports medians over rounds.
Inputs: deterministic values in [-1, 1] shaped like normalized 224x224 images (the cost of a dense
CNN does not depend on pixel values). Decoding is excluded on both sides.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

from bench_common import cpu_model, peak_rss_mb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_headtune(batch, threads, seconds):
    out = subprocess.run([os.path.join(ROOT, '.build/release/headtune'), 'bench', 'backbone', '--batch', str(batch),
                          '--threads', str(threads), '--seconds', str(seconds), '--format', 'json'],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out)


def run_onnxruntime_worker(onnx, batch, threads, seconds):
    """One measurement in a fresh process, so its peak memory is its own."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(onnx, options, providers=['CPUExecutionProvider'])
    print(json.dumps(run_onnxruntime(session, session.get_inputs()[0].name, batch, seconds)))


def run_onnxruntime_subprocess(onnx, batch, threads, seconds):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--worker', '--onnx', onnx, '--batches', str(batch),
                          '--threads', str(threads), '--seconds', str(seconds)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_onnxruntime(session, name, batch, seconds, warmup=1.0):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(batch, 3, 224, 224)).astype(np.float32)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup:
        session.run(None, {name: x})
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {'images_per_s': batch * len(times) / (sum(times) / 1000), 'ms_per_batch_p50': times[len(times) // 2],
            'peak_rss_mb': peak_rss_mb()}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--onnx', default=os.path.join(ROOT, '..', 'shared', 'reference', 'effnet_lite0.onnx'))
    p.add_argument('--batches', default='1,32')
    p.add_argument('--threads', default='2,1')
    p.add_argument('--seconds', type=float, default=5)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return run_onnxruntime_worker(a.onnx, int(a.batches), int(a.threads), a.seconds)
    if not os.path.exists(a.onnx):
        sys.exit(f'{a.onnx} not found: pass --onnx PATH (the reference ONNX export of EfficientNet-Lite0)')

    rows = []
    for threads in [int(t) for t in a.threads.split(',')]:
        for batch in [int(b) for b in a.batches.split(',')]:
            ours, theirs = [], []
            for _ in range(a.rounds):
                ours.append(run_headtune(batch, threads, a.seconds))
                theirs.append(run_onnxruntime_subprocess(a.onnx, batch, threads, a.seconds))
            h = statistics.median(r['images_per_s'] for r in ours)
            o = statistics.median(r['images_per_s'] for r in theirs)
            rows.append((batch, threads, h, statistics.median(r['ms_per_batch_p50'] for r in ours),
                         max(r['peak_rss_mb'] for r in ours), o,
                         statistics.median(r['ms_per_batch_p50'] for r in theirs), max(r['peak_rss_mb'] for r in theirs),
                         h / o, ours[0].get('blas_core', '')))
            print(f'batch {batch} threads {threads}: headtune {h:.1f} img/s, onnxruntime {o:.1f} img/s', file=sys.stderr)

    print(f'Date: {datetime.date.today()}; nproc: {os.cpu_count()}; CPU: {cpu_model()}; '
          f'onnxruntime {ort.__version__}; headtune OpenBLAS core: {rows[0][9]}; '
          f'{a.rounds} alternating rounds of {a.seconds:g} s each, medians.\n')
    print('| batch | threads | headtune images/s | headtune ms/batch p50 | headtune peak RSS MB | ONNX Runtime images/s | ONNX Runtime ms/batch p50 | ONNX Runtime peak RSS MB | ratio |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for b, t, h, hp, rss, o, op, orss, ratio, _ in rows:
        print(f'| {b} | {t} | {h:.1f} | {hp:.2f} | {rss:.0f} | {o:.1f} | {op:.2f} | {orss:.0f} | {ratio:.2f}x |')


if __name__ == '__main__':
    main()
