"""Alternates `headtune bench text` with PyTorch and ONNX Runtime running all-MiniLM-L6-v2 on the same
sentences, batch sizes and thread counts, in one run; prints a Markdown table of medians.

Peers (same weights file, weights/all-minilm-l6-v2.safetensors, no hub access: HF_HUB_OFFLINE=1):
- PyTorch eager: transformers' BertModel built from the local config.json and the safetensors state dict,
  + masked mean pooling + L2 normalize (what sentence-transformers computes);
- ONNX Runtime: that module exported with torch.onnx (dynamic batch and sequence), run with
  intra_op_num_threads = threads.
Each side is timed on the network + pooling only, with the batch tokenized once beforehand (by the HF
tokenizer for the peers, by headtune's own WordPiece for headtune; both give the same ids).
Run through scripts/bench-text-peers, which makes the virtualenv.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

from bench_common import benchmark_sentences, cpu_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, 'weights')
sentences = benchmark_sentences


class SentenceEncoder(torch.nn.Module):
    """BertModel + masked mean pooling + L2 normalization."""

    def __init__(self):
        super().__init__()
        config = BertConfig.from_json_file(os.path.join(WEIGHTS, 'all-minilm-l6-v2', 'config.json'))
        self.bert = BertModel(config, add_pooling_layer=True)
        state = load_file(os.path.join(WEIGHTS, 'all-minilm-l6-v2.safetensors'))
        missing, unexpected = self.bert.load_state_dict(state, strict=False)
        if missing or [k for k in unexpected if k != 'embeddings.position_ids']:
            sys.exit(f'weights do not fit BertModel: missing {missing}, unexpected {unexpected}')
        self.eval()

    def forward(self, input_ids, attention_mask):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def tokenize(n):
    tok = Tokenizer.from_file(os.path.join(WEIGHTS, 'all-minilm-l6-v2', 'tokenizer.json'))
    # tokenizer.json pads every input to 128 tokens; pad to the batch's longest instead, like headtune.
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    encs = [tok.encode(s).ids for s in sentences(n)]
    length = max(len(e) for e in encs)
    ids = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, :len(e)] = e
        mask[i, :len(e)] = 1
    return ids, mask


def timed(fn, seconds, warmup=1.0):
    start = time.perf_counter()
    while time.perf_counter() - start < warmup:
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return sum(times), times[len(times) // 2], len(times)


def run_headtune(batch, threads, seconds):
    binary = os.environ.get('HEADTUNE_BIN', os.path.join(ROOT, '.build/release/headtune'))
    out = subprocess.run([binary, 'bench', 'text', '--batch', str(batch),
                          '--threads', str(threads), '--seconds', str(seconds), '--format', 'json'],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    r = json.loads(out)
    return r['sentences_per_s'], r['ms_per_batch_p50'], r


def worker(kind, onnx_path, batch, threads, seconds):
    """One peer measurement in its own process, so idle threads of the other runtimes (OpenMP and ONNX
    Runtime spin-wait after a call) cannot steal the cores."""
    ids, mask = tokenize(batch)
    if kind == 'torch':
        torch.set_num_threads(threads)
        model = SentenceEncoder()
        tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)

        def call():
            with torch.inference_mode():
                return model(tids, tmask).numpy()
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])

        def call():
            return session.run(None, {'input_ids': ids, 'attention_mask': mask})[0]
    embedding = call()
    total, p50, n = timed(call, seconds)
    print(json.dumps({'sentences_per_s': batch * n / (total / 1000), 'ms_per_batch_p50': p50,
                      'embedding': embedding.tolist()}))


def run_worker(kind, onnx_path, batch, threads, seconds):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--worker', kind, '--onnx', onnx_path,
                          '--batches', str(batch), '--threads', str(threads), '--seconds', str(seconds)],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return r['sentences_per_s'], r['ms_per_batch_p50'], np.array(r['embedding'], dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batches', default='1,32')
    p.add_argument('--threads', default='2')
    p.add_argument('--seconds', type=float, default=5)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--worker', choices=['torch', 'ort'], help=argparse.SUPPRESS)
    p.add_argument('--onnx', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.onnx, int(a.batches), int(a.threads), a.seconds)
        return

    onnx_path = os.path.join(tempfile.mkdtemp(prefix='minilm-onnx-'), 'minilm.onnx')
    ids, mask = tokenize(2)
    with torch.no_grad():
        torch.onnx.export(SentenceEncoder(), (torch.from_numpy(ids), torch.from_numpy(mask)), onnx_path,
                          input_names=['input_ids', 'attention_mask'], output_names=['embedding'],
                          dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'},
                                        'attention_mask': {0: 'batch', 1: 'sequence'}},
                          opset_version=17, dynamo=False)

    rows = []
    for threads in [int(t) for t in a.threads.split(',')]:
        for batch in [int(b) for b in a.batches.split(',')]:
            ids, _ = tokenize(batch)
            ours, theirs_torch, theirs_ort = [], [], []
            for _ in range(a.rounds):
                ours.append(run_headtune(batch, threads, a.seconds))
                theirs_torch.append(run_worker('torch', onnx_path, batch, threads, a.seconds))
                theirs_ort.append(run_worker('ort', onnx_path, batch, threads, a.seconds))
            agreement = float(np.abs(theirs_ort[0][2] - theirs_torch[0][2]).max())
            med = lambda xs, i: statistics.median(x[i] for x in xs)
            rows.append((batch, threads, ids.shape[1], med(ours, 0), med(ours, 1), med(theirs_torch, 0),
                         med(theirs_torch, 1), med(theirs_ort, 0), med(theirs_ort, 1), agreement,
                         ours[0][2].get('blas_core', '')))
            print(f'batch {batch} threads {threads}: headtune {rows[-1][3]:.1f}, torch {rows[-1][5]:.1f}, '
                  f'onnxruntime {rows[-1][7]:.1f} sentences/s', file=sys.stderr)

    print(f'Date: {datetime.date.today()}; nproc: {os.cpu_count()}; CPU: {cpu_model()}; torch {torch.__version__}; '
          f'onnxruntime {ort.__version__}; headtune OpenBLAS core: {rows[0][10]}; '
          f'{a.rounds} alternating rounds of {a.seconds:g} s each (each side in its own process), medians.\n')
    print('| batch | threads | tokens (padded) | headtune sentences/s | headtune ms/batch p50 | PyTorch sentences/s | PyTorch ms/batch p50 | ONNX Runtime sentences/s | ONNX Runtime ms/batch p50 | headtune / best peer |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for b, t, L, h, hp, pt, ptp, o, op, agree, _ in rows:
        print(f'| {b} | {t} | {L} | {h:.1f} | {hp:.2f} | {pt:.1f} | {ptp:.2f} | {o:.1f} | {op:.2f} | {h / max(pt, o):.2f}x |')
    print(f'\nONNX export vs PyTorch: max abs difference of the embeddings {max(r[9] for r in rows):.1e}.')


if __name__ == '__main__':
    main()
