"""Does a candidate setting raise dev pair F1 over paired runs? The rule by which a setting enters `--preset best`.

    python research/preset_choice.py --pair BASE.json CAND.json [--pair ...] [--json OUT]

Each ``--pair`` names two result files of ``ecpe train`` (a run's results.json, or its copy under
docs/results/accuracy/): the run without the setting and the run with it, trained on the same folds with the same
seed and dev share (split20: the same valid files). For every pair and for all pairs pooled, the script prints the
mean **dev** pair F1 (split10: the seeded dev share; split20: the valid file) of both, how many folds rose, and a
two-sided paired t-test over the folds; then the same for **test** pair F1, reported but not used for the choice.
Nothing is trained or predicted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ecpe.significance import paired_difference


def fold_scores(path: str) -> tuple[dict[str, object], dict[int, tuple[float, float]]]:
    """(split, protocol and seed of the run, {fold: (dev pair F1, test pair F1)})."""
    d = json.loads(Path(path).read_text())
    if any("dev" not in f for f in d["per_fold"]):
        raise SystemExit(f"{path}: a fold has no dev scores (a --final or --refit run?)")
    about = {"file": path, "split": d["split"], "protocol": d["protocol"], "seed": d.get("seed")}
    return about, {f["fold"]: (f["dev"]["pair"]["f1"], f["pair"]["f1"]) for f in d["per_fold"]}


def compare(pairs: list[tuple[list[float], list[float]]]) -> dict[str, object]:
    base = [b for bs, _ in pairs for b in bs]
    cand = [c for _, cs in pairs for c in cs]
    return {"baseline": sum(base) / len(base), "candidate": sum(cand) / len(cand), **paired_difference(cand, base)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", nargs=2, action="append", required=True, metavar=("BASE", "CAND"),
                    help="result files of the run without and with the setting")
    ap.add_argument("--json", help="also write the comparison here")
    args = ap.parse_args(argv)
    rows, dev_all, test_all = [], [], []
    for base_path, cand_path in args.pair:
        (base_about, base), (cand_about, cand) = fold_scores(base_path), fold_scores(cand_path)
        if base_about["split"] != cand_about["split"]:
            raise SystemExit(f"{base_path} is {base_about['split']}, {cand_path} is {cand_about['split']}")
        folds = sorted(set(base) & set(cand))
        if not folds:
            raise SystemExit(f"{base_path} and {cand_path} share no fold")
        dev = ([base[k][0] for k in folds], [cand[k][0] for k in folds])
        test = ([base[k][1] for k in folds], [cand[k][1] for k in folds])
        dev_all.append(dev)
        test_all.append(test)
        rows.append({"baseline": base_about, "candidate": cand_about, "folds": folds,
                     "dev_pair_f1": compare([dev]), "test_pair_f1": compare([test])})
    out = {"what": "mean dev pair F1 (split20: valid) decides; test pair F1 reported",
           "pairs": rows, "pooled": {"dev_pair_f1": compare(dev_all), "test_pair_f1": compare(test_all)}}
    for name, row in [*((f"{r['candidate']['file']} ({r['baseline']['split']})", r) for r in rows),
                      ("pooled", out["pooled"])]:
        print(name)
        for what in ("dev_pair_f1", "test_pair_f1"):
            c = row[what]
            p = "n/a" if c["p"] is None else f"{c['p']:.2g}"
            print(f"  {what.split('_')[0]:4s} pair F1 {c['baseline']:.4f} -> {c['candidate']:.4f} "
                  f"({c['mean_diff']:+.4f}, p = {p}, higher in {c['wins']} of {c['n']})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
