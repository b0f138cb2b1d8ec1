"""The student's learning curve: test pair F1 against the number of transfer documents, as a PNG.

Reads the reports of ``research/student_report.py`` (one per point of the curve: ``--report N=FILE``, N the
number of transfer documents asked for, ``all`` for the whole set) and draws their mean ± std over folds, with
``--preset best`` and the teacher ensemble on the same folds as lines. The title names the split, protocol and
folds; a point whose folds differ from the others' is refused.

    python research/student_curve.py --report 0=docs/results/student/student3_gold_split10.json \\
        --report 2500=docs/results/student/student3_transfer2500_split10.json \\
        --report all=docs/results/student/student3_transfer_split10.json --out docs/student_curve_split10.png
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="append", required=True, help="N=FILE (N: transfer documents, or all)")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, folds, first = [], None, None
    for spec in args.report:
        n, _, path = spec.partition("=")
        rep = json.loads(Path(path).read_text())
        if folds is None:
            folds, first = rep["folds"], rep
        elif rep["folds"] != folds:
            print(f"{path}: folds {rep['folds']} differ from {folds}", file=sys.stderr)
            return 2
        if n == "all":  # the mean number of documents the folds' students used
            used = [t["used"] for t in rep["student"]["transfer"].values() if t]
            x = statistics.fmean(used)
        else:
            x = float(n)
        f1 = [v["pair"]["f1"] for v in rep["student"]["per_fold"].values()]
        points.append((x, statistics.fmean(f1), statistics.stdev(f1) if len(f1) > 1 else 0.0))
    points.sort()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    xs, ys, es = zip(*points)
    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=4, label="student of the 3-seed ensemble (mean ± std)")
    for key, label, style in (("single", "--preset best (seed 1)", ":"),
                              ("teacher_ensemble", "teacher ensemble (3 seeds)", "--")):
        ax.axhline(first[key]["mean_same_folds"]["pair"], linestyle=style, color="grey" if style == ":" else "black",
                   label=label)
    ax.set_xlabel("transfer documents per fold")
    ax.set_ylabel("test pair F1")
    ax.set_title(f"{first['split']}, {first['protocol']}, folds {','.join(map(str, folds))}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"{len(points)} points -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
