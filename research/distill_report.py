"""Write a distillation comparison: students against their teacher ensemble and a single model.

    python research/distill_report.py --student 0.8=runs/distill-w0.8 --student 0.9=runs/distill-w0.9 \\
        --teacher docs/results/accuracy/best_seeds123_split10.json --single runs/corpus-open \\
        --out docs/results/distill/NAME.json [--note TEXT]

``--student W=RUN``: one student run per distillation weight (or other student setting) tried (``ecpe train
--teacher ... --distill-weight W``; W is a label, e.g. ``0.8`` or ``0.8,epochs50``); the setting is **chosen on
dev** (the highest mean dev pair F1 over folds, as ``ecpe train`` recorded it), never on test.
``--teacher``: the ensemble's scores (the JSON of ``ecpe.inference.evaluate_runs``, e.g. written by
``ecpe train --seeds``), ``--single``: a single model of the student's size, trained without teachers. Prints
and writes ``{"student": <results.json of the chosen student>, "teacher": ..., "single_same_size": ...,
"weights_tried": ..., "student_vs_teacher": ..., "student_vs_single": ...}`` with paired two-sided t-tests of
F1 over folds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ecpe.compare import paired_over_folds, summarize_run

TASKS = ("pair", "emotion", "cause")


def results(path: str) -> dict:
    p = Path(path)
    return json.loads((p / "results.json" if p.is_dir() else p).read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", action="append", required=True, help="W=RUN, once per weight (or setting) tried")
    ap.add_argument("--teacher", required=True, help="the teacher ensemble's JSON (evaluate_runs schema)")
    ap.add_argument("--single", required=True, help="a single model of the student's size (run folder)")
    ap.add_argument("--single-name", help="how to name --single in the JSON (default: its path)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    students = {}
    for spec in args.student:
        w, sep, run = spec.partition("=")
        if not sep:
            ap.error(f"--student takes W=RUN, got {spec!r}")
        students[w] = results(run)
    tried = {}
    for w, r in students.items():
        dev = [f["dev"]["pair"]["f1"] for f in r["per_fold"] if f.get("dev")]
        if len(dev) != len(r["per_fold"]):
            print(f"the student of W = {w} has folds without dev scores: cannot choose on dev", file=sys.stderr)
            return 2
        tried[w] = {"dev_pair_f1": statistics.fmean(dev), "folds": len(dev), "test_mean": r["mean"]}
    chosen = max(tried, key=lambda w: tried[w]["dev_pair_f1"])
    student, teacher, single = students[chosen], json.loads(Path(args.teacher).read_text()), results(args.single)
    folds = {name: summarize_run(r, name)["per_fold"] for name, r in
             (("student", student), ("teacher", teacher), ("single", single))}
    vs_teacher = paired_over_folds(folds["student"], folds["teacher"])
    vs_single = paired_over_folds(folds["student"], folds["single"])
    out = {
        "student": student,
        "teacher": {k: teacher[k] for k in ("runs", "mean", "std", "per_fold") if k in teacher},
        "single_same_size": {"run": args.single_name or args.single, "mean": single["mean"], "std": single["std"],
                             "config": single.get("config")},
        "weights_tried": tried, "chosen_weight": chosen, "chosen_by": "mean dev pair F1 over folds (never test)",
        "student_vs_teacher": {t: vs_teacher[t] for t in TASKS},
        "student_vs_single": {t: vs_single[t] for t in TASKS},
        "protocol": student.get("protocol"), "split": student.get("split"), "note": args.note,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out['split']}, {out['protocol']}, {len(student['per_fold'])} folds; weights tried (mean dev pair F1): "
          + ", ".join(f"{w}: {v['dev_pair_f1']:.4f}" for w, v in tried.items()) + f" -> W = {chosen}")
    for name, m, s in (("student", student["mean"], student["std"]), ("teacher", teacher["mean"], teacher["std"]),
                       ("single", single["mean"], single["std"])):
        print(f"  {name:8s} pair F1 {m['pair']['f1']:.4f} ± {s['pair']['f1']:.4f}, emotion {m['emotion']['f1']:.4f}, "
              f"cause {m['cause']['f1']:.4f}")
    for what in ("student_vs_teacher", "student_vs_single"):
        d = out[what]["pair"]
        print(f"  {what}: pair F1 {d['mean_diff']:+.4f}, p = {d['p']:.2g}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
