"""int8 EfficientNet-Lite0: headtune (VNNI) vs headtune fp32 vs ONNX Runtime int8, alternating rounds.

1. Picks the calibration images (evenly spread over the sorted folder) and links them into one folder,
   so both quantizers see exactly the same images.
2. headtune: `headtune quantize --calibration THAT_FOLDER` (its default method).
3. ONNX Runtime: the reference fp32 export (shared/reference/effnet_lite0.onnx), pre-processed with
   quant_pre_process, then quantize_static with QDQ, per-channel int8 weights, uint8 activations,
   calibrated (MinMax, ONNX Runtime's default) on the same images' network inputs as
   `headtune preprocess` writes them.
4. Rounds alternate: headtune int8, headtune fp32, ONNX Runtime int8 (each a fresh process, so peak RSS
   is its own), `--seconds` each, batch 1 and 32, 2 threads; medians over rounds.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import cpu_model  # noqa: E402
import bench_peers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADTUNE = os.path.join(ROOT, '.build/release/headtune')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


class Inputs(CalibrationDataReader):
    def __init__(self, array, name):
        self.rows = iter(array[i:i + 1] for i in range(len(array)))
        self.name = name

    def get_next(self):
        row = next(self.rows, None)
        return None if row is None else {self.name: row}


def headtune_bench(batch, threads, seconds, extra):
    out = subprocess.run([HEADTUNE, 'bench', 'backbone', '--batch', str(batch), '--threads', str(threads),
                          '--seconds', str(seconds), '--format', 'json'] + extra,
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--calibration', default=os.path.join(ROOT, '..', 'shared', 'datasets', 'flickr8k-train'))
    p.add_argument('--images', type=int, default=200)
    p.add_argument('--onnx', default=os.path.join(ROOT, '..', 'shared', 'reference', 'effnet_lite0.onnx'))
    p.add_argument('--batches', default='1,32')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seconds', type=float, default=4)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--work', default=os.path.join(tempfile.gettempdir(), 'headtune-int8-peers'))
    a = p.parse_args()
    for path, what in [(a.calibration, 'calibration folder'), (a.onnx, 'reference ONNX export')]:
        if not os.path.exists(path):
            sys.exit(f'bench-int8-peers: {path} not found (the {what})')
    os.makedirs(a.work, exist_ok=True)

    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.calibration) for f in fs
                   if f.lower().endswith(IMAGE_SUFFIXES))
    chosen = files if len(files) <= a.images else [files[i * len(files) // a.images] for i in range(a.images)]
    folder = os.path.join(a.work, 'calibration')
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    for i, f in enumerate(chosen):
        os.symlink(os.path.abspath(f), os.path.join(folder, f'{i:05d}{os.path.splitext(f)[1]}'))

    ours = os.path.join(a.work, 'efficientnet-lite0.int8.safetensors')
    report = json.loads(subprocess.run([HEADTUNE, 'quantize', '--calibration', folder, '--images', str(len(chosen)),
                                        '--out', ours], check=True, capture_output=True, text=True).stdout)
    pixels = os.path.join(a.work, 'calibration.npy')
    subprocess.run([HEADTUNE, 'preprocess', '--out', pixels, folder], check=True, capture_output=True)
    prepared = os.path.join(a.work, 'fp32-prepared.onnx')
    quant_pre_process(a.onnx, prepared, skip_symbolic_shape=True)  # static shapes: onnx shape inference suffices
    theirs = os.path.join(a.work, 'efficientnet-lite0.qdq.onnx')
    name = ort.InferenceSession(prepared, providers=['CPUExecutionProvider']).get_inputs()[0].name
    quantize_static(prepared, theirs, Inputs(np.load(pixels), name), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    print(f'calibrated on {len(chosen)} images of {a.calibration}: headtune method {report["method"]}, '
          f'ONNX Runtime MinMax', file=sys.stderr)

    rows = []
    for batch in [int(b) for b in a.batches.split(',')]:
        int8, fp32, peer = [], [], []
        for _ in range(a.rounds):
            int8.append(headtune_bench(batch, a.threads, a.seconds, ['--precision', 'int8', '--quantized', ours]))
            fp32.append(headtune_bench(batch, a.threads, a.seconds, []))
            peer.append(bench_peers.run_onnxruntime_subprocess(theirs, batch, a.threads, a.seconds))
        med = lambda runs: statistics.median(r['images_per_s'] for r in runs)
        rss = lambda runs: max(r['peak_rss_mb'] for r in runs)
        rows.append((batch, med(int8), rss(int8), med(fp32), rss(fp32), med(peer), rss(peer)))
        print(f'batch {batch}: headtune int8 {med(int8):.1f}/s, fp32 {med(fp32):.1f}/s, '
              f'onnxruntime int8 {med(peer):.1f}/s', file=sys.stderr)

    print(f'Date: {datetime.date.today()}; nproc: {os.cpu_count()}; CPU: {cpu_model()}; onnxruntime {ort.__version__}; '
          f'{a.threads} threads; {a.rounds} alternating rounds of {a.seconds:g} s, medians.\n')
    print('| batch | headtune int8 images/s | peak RSS MB | headtune fp32 images/s | peak RSS MB | ONNX Runtime int8 images/s | peak RSS MB | int8 / our fp32 | int8 / ONNX Runtime int8 |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for b, i8, i8r, f, fr, o, orr in rows:
        print(f'| {b} | {i8:.1f} | {i8r:.0f} | {f:.1f} | {fr:.0f} | {o:.1f} | {orr:.0f} | {i8 / f:.2f}x | {i8 / o:.2f}x |')


if __name__ == '__main__':
    main()
