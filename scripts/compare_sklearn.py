#!/usr/bin/env python3
"""Our head vs scikit-learn LogisticRegression (C tuned by cross-validation) on the same features.

    python3 scripts/compare_sklearn.py [--datasets cars49,busi,pneumoniamnist] [--subsets] [-- TRAIN OPTIONS...]

For each development set in ../shared/datasets (or $HEADTUNE_DATASETS) this runs
`headtune train` with the given options (default: none, i.e. headtune's defaults) and
`--dump-features`, so both learners see exactly the same rows: the same split, geometry,
augmented views and test-time-flip averaging. scikit-learn gets StandardScaler +
LogisticRegression with C chosen by 5-fold stratified group cross-validation on the training rows
(views of one image stay in one fold); both are scored on the same validation images.
Splits: cars49/train and busi/train with headtune's seeded stratified 80/20 split,
pneumoniamnist train -> val.

scikit-learn and numpy are installed into .venv-compare/ with pip on first use.
With `--subsets` on head+stages rows (`-- --features head+stages`), scikit-learn is also scored on column subsets of the same
rows (the head features alone, the stage averages alone, the head with some stages).
Prints a Markdown table and writes the numbers as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-compare"
REQUIREMENTS = ["scikit-learn==1.9.1", "numpy==2.4.6"]
DATASETS = Path(os.environ.get("HEADTUNE_DATASETS", ROOT.parent / "shared" / "datasets"))
SPLITS = {
    "cars49": ("cars49/train", None),
    "busi": ("busi/train", None),
    "pneumoniamnist": ("pneumoniamnist/train", "pneumoniamnist/val"),
}


def ensure_sklearn() -> None:
    """Re-runs this script inside .venv-compare (created with scikit-learn) unless sklearn is importable."""
    try:
        import sklearn  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    check = subprocess.run([str(python), "-c", "import sklearn, numpy"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


# Column ranges of `--features head+stages` rows for EfficientNet-Lite0: the 1280 pooled head features,
# then the average of each stage's output (16, 24, 40, 80, 112, 192, 320 channels).
HEAD = 1280
STAGE_WIDTHS = [16, 24, 40, 80, 112, 192, 320]


def stage_columns(stages: list[int]) -> list[int]:
    starts = [HEAD + sum(STAGE_WIDTHS[:i]) for i in range(len(STAGE_WIDTHS))]
    return [c for i in stages for c in range(starts[i], starts[i] + STAGE_WIDTHS[i])]


SUBSETS = {
    "head": list(range(HEAD)),
    "stages only": stage_columns(list(range(7))),
    "head + stages 0-3": list(range(HEAD)) + stage_columns([0, 1, 2, 3]),
    "head + last 3 stages (4-6)": list(range(HEAD)) + stage_columns([4, 5, 6]),
    "head + last 2 stages (5-6)": list(range(HEAD)) + stage_columns([5, 6]),
}


def sklearn_accuracy(directory: Path, seed: int, columns: list[int] | None = None) -> tuple[float, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.load(directory / "train_features.npy")
    y = np.load(directory / "train_labels.npy").astype(int)
    groups = np.load(directory / "train_images.npy").astype(int)
    xv = np.load(directory / "validation_features.npy")
    yv = np.load(directory / "validation_labels.npy").astype(int)
    if columns is not None:
        x, xv = x[:, columns], xv[:, columns]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    grid = {"logisticregression__C": np.logspace(-4, 1, 11)}
    search = GridSearchCV(pipeline, grid, cv=StratifiedGroupKFold(5, shuffle=True, random_state=seed), n_jobs=2)
    search.fit(x, y, groups=groups)
    return float((search.predict(xv) == yv).mean()), float(search.best_params_["logisticregression__C"])


def main() -> int:
    ensure_sklearn()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(SPLITS))
    parser.add_argument("--headtune", default=str(ROOT / ".build" / "release" / "headtune"))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--subsets", action="store_true",
                        help="with --features head+stages: also score scikit-learn on column subsets (head, stages only, "
                             "head + some stages) of the same rows")
    parser.add_argument("train_options", nargs=argparse.REMAINDER, help="options for headtune train (after --)")
    args = parser.parse_args()
    options = [o for o in args.train_options if o != "--"]
    results = []
    for name in args.datasets.split(","):
        train, validation = SPLITS[name]
        if not (DATASETS / train).is_dir():
            print(f"skipping {name}: {DATASETS / train} not found", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as scratch:
            command = [args.headtune, "train", str(DATASETS / train), "--out", f"{scratch}/head", "--format", "json",
                       "--dump-features", f"{scratch}/features", *options]
            if validation:
                command += ["--validation-dir", str(DATASETS / validation)]
            started = time.time()
            run = subprocess.run(command, capture_output=True, text=True)
            seconds = time.time() - started
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
            ours = json.loads(run.stdout)
            theirs, c = sklearn_accuracy(Path(scratch) / "features", seed=0)
            subsets = {}
            if args.subsets:
                import numpy as np
                width = np.load(Path(scratch) / "features" / "train_features.npy", mmap_mode="r").shape[1]
                if width != HEAD + sum(STAGE_WIDTHS):
                    print(f"--subsets needs head+stages rows ({HEAD + sum(STAGE_WIDTHS)} columns), got {width}: "
                          "add -- --features head+stages", file=sys.stderr)
                    return 1
                for subset, columns in SUBSETS.items():
                    accuracy, subset_c = sklearn_accuracy(Path(scratch) / "features", seed=0, columns=columns)
                    subsets[subset] = {"sklearn_accuracy": accuracy, "sklearn_C": subset_c, "columns": len(columns)}
                    print(f"{name}: scikit-learn on {subset} ({len(columns)} columns): {accuracy:.4f} (C={subset_c:g})", file=sys.stderr)
        results.append({"dataset": name, "headtune_accuracy": ours["accuracy"], "headtune_balanced_accuracy": ours["balanced_accuracy"],
                        "sklearn_accuracy": theirs, "sklearn_C": c, "validation_images": ours["count"],
                        "train_seconds": round(seconds, 1), "options": options, **({"subsets": subsets} if subsets else {})})
        print(f"{name}: headtune {ours['accuracy']:.4f}, scikit-learn {theirs:.4f} (C={c:g}), train {seconds:.1f} s", file=sys.stderr)
    print("| dataset | validation images | headtune | scikit-learn LogisticRegression (tuned C) |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['dataset']} | {r['validation_images']} | {r['headtune_accuracy']:.4f} | {r['sklearn_accuracy']:.4f} (C={r['sklearn_C']:g}) |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
