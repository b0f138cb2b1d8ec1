"""Would forcing one pair into every document, filtering pairs by the heads, or reading emotions and causes off
the pairs, help? (measured 2026-12-02: no for pairs; the clauses of the pairs help causes)

    python research/decode_rules.py RUN [RUN ...] [--data ../shared/data/ecpe-zh] [--seed 1] [--json OUT]

Every NEWS document has at least one emotion-cause pair, and ranking systems (RankCP) always keep their
top-scored pair. Here, for each split10 fold, the run's dev documents (``ecpe.training.dev_split`` with the seed ``ecpe
train`` used) and test documents are predicted once and decoded two ways: the paper's rule (pairs with
M-hat > 0.3, eq. 18) and the same plus a fallback (a document with no pair above 0.3 gets its highest-
scored pair), and two filters that keep a pair above 0.3 only if the auxiliary emotion head also calls its
emotion clause an emotion clause (probability > 1/2), or the emotion head its emotion clause and the cause
head its cause clause. Emotion and cause clauses, which come from the auxiliary heads (probability > 1/2), are also
read three ways: the heads alone (the default), the heads or the clauses of a pair above 0.3 (union), the
heads and such a clause (intersection). Dev and test F1 are printed per fold, then the means over folds and
paired t-tests over folds against the defaults. Dev decides (the test fold is only scored). Several runs are
averaged as one ensemble.
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
    ap.add_argument("--threshold", type=float, default=0.3, help="eta of eq. 18 (default the paper's 0.3)")
    ap.add_argument("--json", help="write the per-fold figures here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from ecpe.data import load_fold
    from ecpe.inference import load_models, predict_documents
    from ecpe.metrics import Prediction, score
    from ecpe.significance import paired_ttest
    from ecpe.training import dev_split

    torch.set_num_threads(1)
    eta = args.threshold

    def decode(pred, fallback, clauses="heads", pair_filter=""):
        kept = [x for x in pred.pairs if x[2] > eta]
        emotions, causes = set(pred.emotions), set(pred.causes)
        if "emotion" in pair_filter:
            kept = [x for x in kept if x[0] in emotions]
        if "cause" in pair_filter:
            kept = [x for x in kept if x[1] in causes]
        if fallback and not kept and pred.pairs:
            kept = [max(pred.pairs, key=lambda x: x[2])]
        in_pairs_e, in_pairs_c = {x[0] for x in kept}, {x[1] for x in kept}
        if clauses == "heads|pairs":
            emotions, causes = emotions | in_pairs_e, causes | in_pairs_c
        elif clauses == "heads&pairs":
            emotions, causes = emotions & in_pairs_e, causes & in_pairs_c
        return Prediction(pairs=kept, emotions=sorted(emotions), causes=sorted(causes))

    # rule -> (task it changes, top-1 fallback, clause rule, pair filter); the first rule of a task is its default
    rules = {"threshold": ("pair", False, "heads", ""), "threshold+top1": ("pair", True, "heads", ""),
             "threshold&emotion-head": ("pair", False, "heads", "emotion"),
             "threshold&both-heads": ("pair", False, "heads", "emotion+cause"),
             "heads": ("clauses", False, "heads", ""), "heads|pairs": ("clauses", False, "heads|pairs", ""),
             "heads&pairs": ("clauses", False, "heads&pairs", "")}
    figures = {part: {r: [] for r in rules} for part in ("dev", "test")}
    for k in range(1, 11):
        fold = load_fold(os.path.join(args.data, "split10"), k)
        _, dev, _ = dev_split(fold, args.seed, args.dev_fraction)
        model, _ = load_models([os.path.join(r, f"fold{k}", "model.pt") for r in args.runs])
        line = [f"fold {k}:"]
        for part, docs in (("dev", dev), ("test", fold.test)):
            preds = predict_documents(model, docs, threshold=1e-3)  # every candidate a rule may keep
            for rule, (task, fallback, clauses, pair_filter) in rules.items():
                s = score(docs, [decode(p, fallback, clauses, pair_filter) for p in preds])
                figures[part][rule].append({t: [s[t]["p"], s[t]["r"], s[t]["f1"]] for t in ("pair", "emotion", "cause")})
                if task == "pair":
                    line.append(f"{part} {rule} pair F1 {s['pair']['f1']:.4f}")
                else:
                    line.append(f"{part} {rule} emotion F1 {s['emotion']['f1']:.4f} cause F1 {s['cause']['f1']:.4f}")
        print(" ".join(line), flush=True)
    summary = {}
    for part, by_rule in figures.items():
        for rule, (task, _, _, _) in rules.items():
            default = "threshold" if task == "pair" else "heads"
            for t in (("pair",) if task == "pair" else ("emotion", "cause")):
                x = np.array([f[t] for f in by_rule[rule]])
                d = np.array([f[t] for f in by_rule[default]])
                p = paired_ttest(x[:, 2], d[:, 2]).p if rule != default else None
                print(f"split10, 10 folds, {part} {t} ({rule}): P {x[:, 0].mean():.4f} R {x[:, 1].mean():.4f} "
                      f"F1 {x[:, 2].mean():.4f} ± {x[:, 2].std(ddof=1):.4f}"
                      + (f"; against {default}: paired t-test p = {p:.2g}" if p is not None else ""))
                summary[f"{part} {t} {rule}"] = {"p": float(x[:, 0].mean()), "r": float(x[:, 1].mean()),
                                                 "f1": float(x[:, 2].mean()), "f1_std": float(x[:, 2].std(ddof=1)),
                                                 "p_value": p}
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump({"protocol": f"split10, 10 folds; pairs with M-hat > {eta}, and the same with each document's "
                                   "top pair kept when none passes, and with only the pairs whose emotion clause (and cause clause) the heads also name; emotion / cause clauses from the heads, their union or "
                                   "intersection with the clauses of the pairs above eta; dev = the run's own dev share (decides), "
                                   "test = the fold's test documents (only scored)", "runs": args.runs,
                       "per_fold": figures, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
