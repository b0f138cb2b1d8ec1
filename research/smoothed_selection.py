"""Would a smoothed dev curve pick better epochs than its argmax? (measured 2026-12-02: no)

    python research/smoothed_selection.py RUN [RUN ...] [--windows 1 3 5] [--json OUT]

With 175-195 dev documents the dev pair F1 of one epoch is noisy, and the dev-selected model scores below
the test-selected one of the same run (docs/accuracy.md). A centred moving average of the dev curve over
W epochs might pick a steadier epoch. This script reads the per-epoch dev and test pair F1 that every
``result.json`` of ``ecpe train`` keeps in its history and, for each window W, prints the mean test pair F1
at the epoch each rule picks, over every fold of every run given, with a paired t-test against W = 1 (the
argmax, what ``ecpe train`` does). The rules see dev scores only; the test scores are read only to score
the epochs they pick. Nothing is trained or predicted (the runs' saved models are the argmax epochs).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def pick(dev: list[float], window: int) -> int:
    """Index of the epoch whose centred mean of ``window`` dev scores (cut at the ends) is highest; ties: first."""
    half = window // 2
    smoothed = [sum(dev[max(0, i - half):i + half + 1]) / len(dev[max(0, i - half):i + half + 1])
                for i in range(len(dev))]
    return max(range(len(dev)), key=lambda i: (smoothed[i], -i))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders of `ecpe train` (foldK/result.json each)")
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    import numpy as np

    from ecpe.significance import paired_ttest

    picked: dict[int, list[float]] = {w: [] for w in args.windows}
    folds = 0
    for run in args.runs:
        results = sorted(Path(run).glob("fold*/result.json"))
        if not results:
            print(f"{run}: no foldK/result.json", file=sys.stderr)
            return 2
        for path in results:
            history = json.loads(path.read_text())["history"]
            dev = [e["dev"]["pair"]["f1"] for e in history]
            test = [e["test"]["pair"]["f1"] for e in history]
            for w in args.windows:
                picked[w].append(test[pick(dev, w)])
            folds += 1
    base = np.array(picked[1] if 1 in picked else picked[args.windows[0]])
    report = {"protocol": "dev curve smoothed over W epochs; test pair F1 at the picked epoch, mean over folds",
              "runs": args.runs, "folds": folds, "windows": {}}
    print(f"{len(args.runs)} runs, {folds} folds (dev-selected rules; test pair F1 at the picked epoch)")
    for w in args.windows:
        x = np.array(picked[w])
        p = paired_ttest(x, base).p if not np.array_equal(x, base) else None
        report["windows"][str(w)] = {"test_pair_f1": float(x.mean()), "diff": float((x - base).mean()), "p": p}
        print(f"  window {w}: test pair F1 {x.mean():.4f}  ({(x - base).mean():+.4f}"
              + (f", p = {p:.2g})" if p is not None else ")"))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
