#!/usr/bin/env python3
"""Few-shot heads with and without --init-from-labels on a class-per-folder dataset.

    python3 scripts/measure_fewshot.py [--data ../shared/datasets/cars49/train] [--shots 2,5] [--seeds 0,1,2] [-- TRAIN OPTIONS]

For each shot count k and seed, writes a CSV manifest (path,label,split) with k seeded training images
per class and every other image as the held-out set, then runs `headtune train MANIFEST --patience 0`
(no early stopping: the held-out images are never used to pick a model) twice, without and with
--init-from-labels, and reports held-out accuracy. Features come from the cache (--cache or the default).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def manifest(data: Path, shots: int, seed: int, out: Path) -> None:
    rng = random.Random(seed)
    lines = ["path,label,split"]
    for label in sorted(p.name for p in data.iterdir() if p.is_dir()):
        files = sorted(str(f.resolve()) for f in (data / label).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        rng.shuffle(files)
        lines += [f'"{f}",{label},{"train" if i < shots else "validation"}' for i, f in enumerate(files)]
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cars49" / "train"))
    parser.add_argument("--shots", default="2,5")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--headtune", default=str(ROOT / ".build" / "release" / "headtune"))
    parser.add_argument("train_options", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    options = [o for o in args.train_options if o != "--"]
    print("| images per class | seed | random (zero) init | --init-from-labels |")
    print("| ---: | ---: | ---: | ---: |")
    for shots in map(int, args.shots.split(",")):
        for seed in map(int, args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as scratch:
                csv = Path(scratch) / "fewshot.csv"
                manifest(Path(args.data), shots, seed, csv)
                accuracies = []
                for extra in ([], ["--init-from-labels"]):
                    command = [args.headtune, "train", str(csv), "--out", f"{scratch}/head", "--format", "json",
                               "--patience", "0", *options, *extra]
                    run = subprocess.run(command, capture_output=True, text=True)
                    if run.returncode != 0:
                        print(run.stderr, file=sys.stderr)
                        return 1
                    print(run.stderr.strip().splitlines()[-3:], file=sys.stderr)
                    accuracies.append(json.loads(run.stdout)["accuracy"])
            print(f"| {shots} | {seed} | {accuracies[0]:.4f} | {accuracies[1]:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
