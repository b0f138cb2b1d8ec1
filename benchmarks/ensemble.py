"""Accuracy of seed ensembles of E2EECPE over the folds of a split (beyond the paper).

    python benchmarks/ensemble.py --runs runs/full10 runs/seed2 runs/seed3 [--data ../shared/data/ecpe-zh]

Each run folder is an ``ecpe train --folds all`` run (one seed each, dev-selected). For every fold, the
members' test scores and the scores of their average (``ecpe.ensemble.Ensemble``) are printed, then the
mean ± std over folds and a paired t-test over folds of the ensemble against the members' mean. The test
fold is only scored: members were selected on their own dev sets.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="run folders (foldK/model.pt), one per seed")
    ap.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"))
    ap.add_argument("--split", default="split10")
    ap.add_argument("--json", help="also write the per-fold figures here")
    args = ap.parse_args(argv)

    from scipy.stats import ttest_rel

    from ecpe.data.corpus import find_folds, read_documents
    from ecpe.ensemble import Ensemble
    from ecpe.models import load_model
    from ecpe.training import evaluate

    split_dir = Path(args.data) / args.split
    folds = [k for k in find_folds(split_dir) if all((Path(r) / f"fold{k}" / "model.pt").exists() for r in args.runs)]
    if not folds:
        print("no fold has a model in every run folder", file=sys.stderr)
        return 2
    protocols = set()
    rows = []
    for k in folds:
        test = read_documents(split_dir / f"fold{k}_test.txt")
        members = []
        for r in args.runs:
            model, ckpt = load_model(Path(r) / f"fold{k}" / "model.pt")
            protocols.add(ckpt.get("meta", {}).get("protocol", "?"))
            members.append(model)
        single = [evaluate(m, m.tensorize(test)) for m in members]
        ens = Ensemble(members).evaluate(test)
        rows.append({"fold": k, "members": single, "ensemble": ens})
        print(f"fold {k}: pair F1 members " + " ".join(f"{s['pair']['f1']:.4f}" for s in single)
              + f" | ensemble {ens['pair']['f1']:.4f}", flush=True)
    label = f"members {', '.join(sorted(protocols))}, {args.split}, folds {','.join(map(str, folds))}"
    print(f"\nE2EECPE, {len(args.runs)} seeds ({label}), test, mean ± std over folds:")
    for task in ("pair", "emotion", "cause"):
        member_mean = [statistics.fmean(s[task]["f1"] for s in r["members"]) for r in rows]
        per_seed = [[r["members"][i][task]["f1"] for r in rows] for i in range(len(args.runs))]
        ens = [r["ensemble"][task]["f1"] for r in rows]
        sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
        p = ttest_rel(ens, member_mean).pvalue if len(rows) > 1 else float("nan")
        print(f"  {task:8s} F1 single seeds " + ", ".join(f"{statistics.fmean(x):.4f}" for x in per_seed)
              + f" (mean {statistics.fmean(member_mean):.4f} ± {sd(member_mean):.4f}); ensemble "
              f"{statistics.fmean(ens):.4f} ± {sd(ens):.4f}; paired t-test ensemble vs member mean p = {p:.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "protocol": label, "per_fold": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
