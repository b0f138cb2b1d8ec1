"""Would choosing the pair threshold eta on dev help? (issue 13; measured: no)

    python benchmarks/dev_threshold.py RUN [RUN ...] [--data ../shared/data/ecpe-zh] [--seed 1]

For each split10 fold: rebuild the run's dev documents (``carve_dev`` with the seed ``ecpe train`` used: the
first run's seed), predict dev and test once, pick eta in 0.10, 0.15, ..., 0.70 by dev pair F1 (ties: the one
nearest the paper's 0.3), and print the test pair F1 at 0.3 and at the dev-chosen eta, with a paired t-test
over folds. Several runs are averaged as one ensemble. The test documents never influence the choice.
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
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from scipy.stats import ttest_rel

    from ecpe.data import load_fold
    from ecpe.inference import load_models, predict_documents
    from ecpe.metrics import Prediction, score
    from ecpe.training import carve_dev

    torch.set_num_threads(1)
    grid = [round(x, 2) for x in np.arange(0.10, 0.71, 0.05)]

    def f1_at(docs, preds, eta):
        kept = [Prediction(pairs=[x for x in p.pairs if x[2] > eta], emotions=p.emotions, causes=p.causes)
                for p in preds]
        return score(docs, kept)["pair"]["f1"]

    rows = []
    for k in range(1, 11):
        fold = load_fold(os.path.join(args.data, "split10"), k)
        _, dev = carve_dev(fold.train, args.dev_fraction, args.seed * 1000 + fold.index)
        model, _ = load_models([os.path.join(r, f"fold{k}", "model.pt") for r in args.runs])
        dev_pred = predict_documents(model, dev, threshold=grid[0] - 0.05)
        test_pred = predict_documents(model, fold.test, threshold=grid[0] - 0.05)
        dev_f1 = {e: f1_at(dev, dev_pred, e) for e in grid}
        eta = max(grid, key=lambda e: (dev_f1[e], -abs(e - 0.3)))
        rows.append((f1_at(fold.test, test_pred, 0.3), f1_at(fold.test, test_pred, eta), eta))
        print(f"fold {k}: {len(dev)} dev documents, eta {eta:.2f} (dev pair F1 {dev_f1[eta]:.4f}, at 0.3 "
              f"{dev_f1[0.3]:.4f}); test pair F1 at 0.3 {rows[-1][0]:.4f}, at eta {rows[-1][1]:.4f}", flush=True)
    a = np.array(rows)
    print(f"split10, 10 folds, test pair F1 mean: eta 0.3 {a[:, 0].mean():.4f} ± {a[:, 0].std(ddof=1):.4f}, "
          f"dev-chosen eta {a[:, 1].mean():.4f} ± {a[:, 1].std(ddof=1):.4f}; paired t-test p = "
          f"{ttest_rel(a[:, 1], a[:, 0]).pvalue:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
