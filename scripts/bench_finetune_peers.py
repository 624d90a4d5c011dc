#!/usr/bin/env python3
"""headtune's partial fine-tuning next to PyTorch doing the same work, in alternating rounds.

    scripts/bench-finetune-peers DATA [--validation-dir DIR] [--unfreeze K] [--lora-rank R] [--epochs E]

Round by round, alternately:
  * headtune: `headtune train DATA --unfreeze K ... --dump-features D` (cut activations from the cache
    after the first round); its fine-tuning seconds and validation accuracy from stderr;
  * PyTorch (2 threads, float32): the same fine-tuning from headtune's dumped inputs, so both start from
    the same cut activations and the same linear probe: the tail of scripts/tail_reference.py (BatchNorm
    folded, as headtune trains it), a linear head on standardized features, cross-entropy + (l2/2)||W||^2
    on the head, AdamW (tail weights decay 1e-2, biases 0, head 0), one epoch of linear warm-up then
    cosine decay per step, minibatch 32, the same epochs; after each epoch the validation loss over each
    image's views averaged, keeping the epoch with the lowest (epoch 0 = the probe). LoRA is not run on
    the PyTorch side (it is not the same work); --lora-rank runs headtune only.

Prints one JSON line per round and a summary: fine-tuning seconds, rows per second and the kept
epoch's validation accuracy for both, and the ratio of PyTorch's time to headtune's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tail_reference import ROOT, Tail, load_model, stage_ends


def run_headtune(binary: str, args, dump: Path) -> dict:
    command = [binary, "train", args.data, "--out", str(dump / "bench.head"), "--cache", args.cache, "--unfreeze", str(args.unfreeze),
               "--fine-tune-epochs", str(args.epochs), "--dump-features", str(dump), "--views", str(args.views)]
    if args.validation_dir:
        command += ["--validation-dir", args.validation_dir]
    if args.lora_rank:
        command += ["--lora-rank", str(args.lora_rank)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"headtune failed:\n{result.stderr}")
    seconds = float(re.search(r"fine-tuning ([0-9.]+) s", result.stderr).group(1))
    # The validation report is the run's output (stdout); the timings are diagnostics (stderr).
    accuracy = float(re.search(r"^  accuracy ([0-9.]+)   balanced", result.stdout, re.M).group(1))
    best = int(re.search(r"best (\d+)", result.stderr).group(1))
    return {"peer": "headtune", "fine_tune_seconds": seconds, "validation_accuracy": accuracy, "best_epoch": best,
            "wall_seconds": round(wall, 1)}


def run_torch(dump: Path, args) -> dict:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = load_model(torch.float32)
    tail = Tail(model, args.unfreeze)
    h, w, c = tail.cut_shape()
    load = lambda name: np.load(dump / f"{name}.npy")  # noqa: E731
    train, labels = load("cut_train"), load("cut_train_labels").astype(np.int64)
    validation, validation_labels = load("cut_validation"), load("validation_labels").astype(np.int64)
    views = validation.shape[0] // max(1, validation_labels.shape[0])
    mean, inverse_std = torch.from_numpy(load("probe_mean")), torch.from_numpy(load("probe_inverse_std"))
    head_w = torch.from_numpy(load("probe_weight")).clone().requires_grad_(True)
    head_b = torch.from_numpy(load("probe_bias")).clone().requires_grad_(True)
    l2 = float(load("probe_l2")[0])
    include_stages = mean.shape[0] > 1280
    activation = h * w * c
    ends = stage_ends()
    frozen_width = sum(s[-1] for s, e in zip(__import__("effnet_lite").STAGES, ends) if e < tail.cut)

    def features(rows: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rows)
        cut = x[:, :activation].reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
        pooled, stages = tail.forward(cut, include_stages)
        parts = [pooled] + ([x[:, activation:activation + frozen_width]] + stages if include_stages else [])
        return (torch.cat(parts, dim=1) - mean) * inverse_std

    def validate() -> tuple[float, float]:
        with torch.no_grad():
            outs = [features(validation[i:i + 64 * views]) for i in range(0, validation.shape[0], 64 * views)]
            x = torch.cat(outs).reshape(-1, views, mean.shape[0]).mean(dim=1)
            logits = x @ head_w.T + head_b
            y = torch.from_numpy(validation_labels)
            return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    tail_weights = [v for k, v in tail.leaves.items() if k.endswith(".weight")]
    tail_biases = [v for k, v in tail.leaves.items() if k.endswith(".bias")]
    lr_tail, lr_head = 1e-4, 1e-5
    optimizer = torch.optim.AdamW([
        {"params": tail_weights, "lr": lr_tail, "weight_decay": 1e-2},
        {"params": tail_biases, "lr": lr_tail, "weight_decay": 0.0},
        {"params": [head_w, head_b], "lr": lr_head, "weight_decay": 0.0}], eps=1e-8)
    batch = min(32, train.shape[0])
    steps_per_epoch = math.ceil(train.shape[0] / batch)
    total = steps_per_epoch * args.epochs

    def factor(step: int) -> float:
        if step < steps_per_epoch:
            return (step + 1) / steps_per_epoch
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - steps_per_epoch) / max(1, total - steps_per_epoch))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    best_loss, best_accuracy = validate()
    best_epoch = 0
    generator = np.random.default_rng(0)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = generator.permutation(train.shape[0])
        for first in range(0, len(order), batch):
            rows = order[first:first + batch]
            x = features(train[rows])
            loss = F.cross_entropy(x @ head_w.T + head_b, torch.from_numpy(labels[rows])) + 0.5 * l2 * (head_w ** 2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        loss_v, accuracy_v = validate()
        if loss_v < best_loss - 1e-6:
            best_loss, best_accuracy, best_epoch = loss_v, accuracy_v, epoch
    seconds = time.perf_counter() - started
    return {"peer": "pytorch", "fine_tune_seconds": round(seconds, 1), "validation_accuracy": round(best_accuracy, 4),
            "best_epoch": best_epoch, "torch": torch.__version__, "rows": int(train.shape[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("--validation-dir")
    parser.add_argument("--unfreeze", type=int, default=2)
    parser.add_argument("--lora-rank", type=int)
    parser.add_argument("--views", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--binary", default=str(ROOT / ".build" / "release" / "headtune"))
    parser.add_argument("--cache", default=str(ROOT / "bench-data" / "features.sqlite"))
    args = parser.parse_args()
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as directory:
        dump = Path(directory)
        for round_number in range(1, args.rounds + 1):
            ours = run_headtune(args.binary, args, dump)
            ours["round"] = round_number
            print(json.dumps(ours), flush=True)
            results.append(ours)
            if args.lora_rank:
                continue
            theirs = run_torch(dump, args)
            theirs["round"] = round_number
            print(json.dumps(theirs), flush=True)
            results.append(theirs)
    ours = [r for r in results if r["peer"] == "headtune"]
    theirs = [r for r in results if r["peer"] == "pytorch"]
    summary = {"data": args.data, "unfreeze": args.unfreeze, "lora_rank": args.lora_rank, "epochs": args.epochs,
               "headtune_seconds": min(r["fine_tune_seconds"] for r in ours),
               "headtune_accuracy": ours[-1]["validation_accuracy"]}
    if theirs:
        summary["pytorch_seconds"] = min(r["fine_tune_seconds"] for r in theirs)
        summary["pytorch_accuracy"] = theirs[-1]["validation_accuracy"]
        summary["speed_ratio_headtune_over_pytorch"] = round(summary["pytorch_seconds"] / summary["headtune_seconds"], 2)
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
