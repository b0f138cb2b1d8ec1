"""Accuracy of ensembles of E2EECPE runs (seeds or variants) over the folds of a split (beyond the paper).

    python research/ensemble.py --runs runs/full10 runs/seed2 runs/seed3 [--data ../shared/data/ecpe-zh]

Each run folder is an ``ecpe train --folds all`` run (dev-selected): seeds of one configuration, or different
configurations (other flags, vectors or sizes; each member reads the documents through its own vocabulary).
For every fold, the members' test scores and the scores of their average (``ecpe.inference.Ensemble``)
are printed, then the mean ± std over folds and a paired t-test over folds of the ensemble against the
members' mean. The test fold is only scored: members were selected on their own dev sets. (``ecpe train
--seeds 1,2,3`` trains the members and prints the same figures.)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="run folders (foldK/model.pt), one per seed or configuration")
    ap.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"))
    ap.add_argument("--split", default="split10")
    ap.add_argument("--clauses", choices=["heads", "heads+pairs"],
                    help="emotion / cause lists: the heads only, or also every predicted pair's clauses (default: the models')")
    ap.add_argument("--json", help="also write the per-fold figures here")
    args = ap.parse_args(argv)

    from ecpe.cli import print_ensemble
    from ecpe.inference import evaluate_runs

    res = evaluate_runs(args.runs, Path(args.data) / args.split, progress=True, clauses=args.clauses)
    if not res["per_fold"]:
        print("no fold has a model in every run folder", file=sys.stderr)
        return 2
    print()
    print_ensemble(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
