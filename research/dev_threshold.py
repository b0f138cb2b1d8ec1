"""Would choosing the pair threshold eta on dev help? (measured 2026-12-01: no)

    python research/dev_threshold.py RUN [RUN ...] [--data ../shared/data/ecpe-zh] [--seed 1]

For each split10 fold: rebuild the run's dev documents (``ecpe.training.dev_split`` with the seed ``ecpe train`` used: the
first run's seed), predict dev and test once, pick eta in 0.10, 0.15, ..., 0.70 by dev pair F1 (ties: the one
nearest the paper's 0.3), and print the test pair F1 at 0.3 and at the dev-chosen eta, with a paired t-test
over folds; then one eta for every fold, chosen on the dev pair F1 averaged over the folds (ten times the
dev documents behind each choice). Several runs are averaged as one ensemble (their dev shares must be the
same: runs of one --seed). The test documents never influence the choice.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"))
    ap.add_argument("--seed", type=int, default=1, help="the --seed of the (first) run: it seeded its dev share")
    ap.add_argument("--dev-fraction", type=float, default=0.1)
    ap.add_argument("--json", help="write the per-fold figures and both choices here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from ecpe.data import load_fold
    from ecpe.inference import load_models, predict_documents
    from ecpe.metrics import Prediction, score
    from ecpe.significance import paired_ttest
    from ecpe.training import dev_split

    torch.set_num_threads(1)
    grid = [round(x, 2) for x in np.arange(0.10, 0.71, 0.05)]

    def f1_at(docs, preds, eta):
        kept = [Prediction(pairs=[x for x in p.pairs if x[2] > eta], emotions=p.emotions, causes=p.causes)
                for p in preds]
        return score(docs, kept)["pair"]["f1"]

    rows, dev_curves, test_curves = [], [], []
    for k in range(1, 11):
        fold = load_fold(os.path.join(args.data, "split10"), k)
        _, dev, _ = dev_split(fold, args.seed, args.dev_fraction)
        model, _ = load_models([os.path.join(r, f"fold{k}", "model.pt") for r in args.runs])
        dev_pred = predict_documents(model, dev, threshold=grid[0] - 0.05)
        test_pred = predict_documents(model, fold.test, threshold=grid[0] - 0.05)
        dev_f1 = {e: f1_at(dev, dev_pred, e) for e in grid}
        eta = max(grid, key=lambda e: (dev_f1[e], -abs(e - 0.3)))
        dev_curves.append([dev_f1[e] for e in grid])
        test_curves.append([f1_at(fold.test, test_pred, e) for e in grid])
        rows.append((test_curves[-1][grid.index(0.3)], test_curves[-1][grid.index(eta)], eta))
        print(f"fold {k}: {len(dev)} dev documents, eta {eta:.2f} (dev pair F1 {dev_f1[eta]:.4f}, at 0.3 "
              f"{dev_f1[0.3]:.4f}); test pair F1 at 0.3 {rows[-1][0]:.4f}, at eta {rows[-1][1]:.4f}", flush=True)
    a = np.array(rows)
    p_per_fold = paired_ttest(a[:, 1], a[:, 0]).p
    print(f"split10, 10 folds, test pair F1 mean: eta 0.3 {a[:, 0].mean():.4f} ± {a[:, 0].std(ddof=1):.4f}, "
          f"dev-chosen eta {a[:, 1].mean():.4f} ± {a[:, 1].std(ddof=1):.4f}; paired t-test p = {p_per_fold:.2g}")
    # one eta for every fold, chosen on the mean dev curve (10 x the dev documents of one fold)
    mean_dev = np.array(dev_curves).mean(0)
    j = max(range(len(grid)), key=lambda i: (mean_dev[i], -abs(grid[i] - 0.3)))
    pooled = np.array(test_curves)[:, j]
    line = f"one eta for all folds chosen on the mean dev pair F1: {grid[j]:.2f}"
    if grid[j] == 0.3:
        print(f"{line}, the paper's")
    else:
        print(f"{line} (mean dev {mean_dev[j]:.4f}, at 0.3 {mean_dev[grid.index(0.3)]:.4f}); test pair F1 "
              f"{pooled.mean():.4f} ± {pooled.std(ddof=1):.4f}, p = {paired_ttest(pooled, a[:, 0]).p:.2g} against 0.3")
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump({"protocol": "split10, 10 folds; eta chosen on dev pair F1 (per fold, and one for all folds on "
                                   "the mean dev curve); test pair F1 at the chosen eta", "runs": args.runs,
                       "grid": grid, "per_fold": [{"fold": k + 1, "eta": r[2], "test_at_0.3": r[0], "test_at_eta": r[1]}
                                                  for k, r in enumerate(rows)],
                       "test_at_0.3": float(a[:, 0].mean()), "test_at_per_fold_eta": float(a[:, 1].mean()),
                       "p_per_fold": p_per_fold, "pooled_eta": grid[j],
                       "test_at_pooled_eta": float(pooled.mean()),
                       "mean_dev_curve": [float(x) for x in mean_dev]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
