"""Students of ``ecpe train --preset student`` over the folds of a split, against ``--preset best`` and the
teacher ensemble.

The preset is run once per fold into its own folder (``ecpe train --preset student --folds K --out RUN_K``), so
that two folds can train side by side; each RUN_K holds ``teachers/seedS``, ``transfer`` and ``student`` (and,
for the learning curve, ``curve-N``: ``ecpe train --preset best --teacher RUN_K/teachers/seed1 ... --transfer
RUN_K/transfer --transfer-docs N --out RUN_K/curve-N``). A sub-folder may also hold several folds (a run of
``--folds all``): ``--runs RUN --what A --what B`` then reports, and chooses between, every fold the two share.

    python research/student_report.py --runs runs/s10/fold{1,2,3,4,5,6,7,8,9,10} --what student \\
        --name student3_transfer --single docs/results/accuracy/best_pair_window3_split10.json \\
        --teacher docs/results/accuracy/best_window3_seeds123_split10.json \\
        --member docs/results/accuracy/best_pair_window3_split10.json \\
        --member docs/results/accuracy/best_pair_window3_seed2_split10.json \\
        --member docs/results/accuracy/best_pair_window3_seed3_split10.json

It writes

- ``docs/results/accuracy/NAME_SPLIT.json``: the folds' ``results.json`` joined into one (the schema of ``ecpe
  train``, so that ``research/accuracy_table.py`` gives it a row once every fold of the split is there);
- ``docs/results/student/NAME_SPLIT.json``: mean ± std over the folds found, two-sided paired t-tests of test
  F1 against ``--single``, ``--teacher`` (an ensemble's JSON) and each ``--against NAME=FILE``, and whether each fold's teachers reproduced
  the committed runs ``--member`` (test pair F1 of the same seed and fold, equal to 1e-12): the teacher ensemble
  of the committed JSON is then the ensemble the student learned from.

With ``--what`` given more than once (e.g. ``--what clean-0 --what clean-2500``), each fold's student is the
candidate with the highest **dev** pair F1 (the first listed on a tie): a setting chosen per fold on dev, honest
only when every teacher left the student's dev share out (``ecpe train --dev-seed``). The report records the
choice of each fold.

Only test scores of the student's dev-selected epoch are read; nothing is chosen on test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ecpe.compare import load_run, paired_over_folds, summarize_run
from ecpe.metrics import mean_std

TASKS = ("pair", "emotion", "cause")


def read(path: Path) -> dict:
    return json.loads((path / "results.json" if path.is_dir() else path).read_text())


def per_fold(path: str | Path) -> dict[int, dict]:
    """{fold: {task: {p, r, f1}}} of a run folder, its results.json or an ensemble's JSON."""
    return load_run(path)["per_fold"]


def describe(d: dict) -> str:
    """One comparison of :func:`ecpe.compare.paired_over_folds` as a line: per task the mean difference, and the
    p and the folds up where there are two folds or more."""
    return ", ".join(f"{t} {d[t]['mean_diff']:+.4f}" + (f" (p = {d[t]['p']:.2g}, {d[t]['wins']}/{len(d['folds'])} "
                                                       f"folds up)" if d[t]["p"] is not None else "") for t in TASKS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="one preset folder per fold")
    ap.add_argument("--what", action="append",
                    help="the sub-folder of each run to report (student, curve-N; default student); more than once: "
                         "per fold, the one of highest dev pair F1")
    ap.add_argument("--name", required=True, help="the result's name (the files' stem, before _SPLIT)")
    ap.add_argument("--single", required=True, help="--preset best's results (all folds, seed 1)")
    ap.add_argument("--teacher", required=True, help="the teacher ensemble's JSON")
    ap.add_argument("--member", action="append", default=[],
                    help="a committed run of one teacher seed, in the order of the seeds (checks reproduction)")
    ap.add_argument("--against", action="append", default=[],
                    help="NAME=FILE: one more paired comparison (a run's or ensemble's JSON, e.g. another student)")
    ap.add_argument("--results", default="docs/results", help="the results folder (accuracy/ and student/)")
    ap.add_argument("--command", default="", help="the command that trained the runs, for the record")
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args(argv)

    whats = args.what or ["student"]
    folds_found, chosen = [], {}
    for run in args.runs:
        paths = [Path(run) / w / "results.json" for w in whats]
        missing = [p for p in paths if not p.exists()]
        if missing:
            print(f"{missing[0]}: not there (fold not finished), left out", file=sys.stderr)
            continue
        candidates = [read(p) for p in paths]
        by_fold = [{f["fold"]: f for f in c["per_fold"]} for c in candidates]
        for k in sorted(set.intersection(*(set(b) for b in by_fold))):
            entries, best = [b[k] for b in by_fold], 0
            if len(whats) > 1:
                dev = [e["dev"]["pair"]["f1"] for e in entries]
                best = dev.index(max(dev))
                chosen[k] = {"what": whats[best], "dev_pair_f1": dict(zip(whats, dev))}
            folds_found.append((Path(run), whats[best], candidates[best], entries[best]))
    if not folds_found:
        print("no finished fold", file=sys.stderr)
        return 2
    folds_found.sort(key=lambda x: x[3]["fold"])
    first = folds_found[0][2]
    joined_folds = [f for _, _, _, f in folds_found]
    mean, std = mean_std(joined_folds)
    split = first["split"]
    joined = {"model": first["model"], "protocol": first["protocol"], "split": split,
              "folds": [f["fold"] for f in joined_folds], "seed": first["seed"], "config": first["config"],
              "mean": mean, "std": std, "per_fold": joined_folds,
              "joined_from": list(dict.fromkeys(str(run / what) for run, what, _, _ in folds_found)),
              **({"chosen_on_dev": whats} if len(whats) > 1 else {})}

    single, teacher = per_fold(args.single), per_fold(args.teacher)
    student = summarize_run(joined, args.name)["per_fold"]
    reproduction = []
    for run in dict.fromkeys(run for run, _, _, _ in folds_found):
        for s, member in enumerate(args.member, start=1):
            mine = run / "teachers" / f"seed{s}" / "results.json"
            if not mine.exists():
                continue
            ours, committed = per_fold(mine), per_fold(member)
            for k, m in ours.items():
                reproduction.append({"fold": k, "seed": s, "test_pair_f1": m["pair"]["f1"],
                                     "committed": committed.get(k, {}).get("pair", {}).get("f1"),
                                     "same": abs(m["pair"]["f1"] - committed.get(k, {}).get("pair", {}).get("f1", -1))
                                     < 1e-12})
    dev = [f["dev"]["pair"]["f1"] for f in joined_folds if f.get("dev")]
    report = {
        "name": args.name, "split": split, "protocol": joined["protocol"], "folds": joined["folds"],
        "complete": False, "command": args.command, "what": whats[0] if len(whats) == 1 else whats,
        **({"chosen_on_dev": chosen} if chosen else {}),
        "student": {"mean": mean, "std": std, "per_fold": {k: v for k, v in student.items()},
                    "best_epochs": {f["fold"]: f.get("best_epoch") for f in joined_folds},
                    "dev_pair_f1_mean": statistics.fmean(dev) if dev else None,
                    "transfer": {f["fold"]: f.get("transfer") for f in joined_folds},
                    "fold_minutes": sum(f.get("wall_seconds") or 0 for f in joined_folds) / 60},
        "single": {"file": args.single, "mean_same_folds": {
            t: statistics.fmean(single[k][t]["f1"] for k in student) for t in TASKS}},
        "teacher_ensemble": {"file": args.teacher, "mean_same_folds": {
            t: statistics.fmean(teacher[k][t]["f1"] for k in student) for t in TASKS}},
        "vs_single": paired_over_folds(student, single),
        "vs_teacher_ensemble": paired_over_folds(student, teacher),
        "vs_other": {name: paired_over_folds(student, per_fold(file))
                     for name, _, file in (a.partition("=") for a in args.against)},
        "teachers_reproduced": {"checked": len(reproduction), "same": sum(r["same"] for r in reproduction),
                                "per_fold_seed": reproduction},
        "notes": args.note,
    }
    all_folds = sorted(single)
    report["complete"] = sorted(student) == all_folds
    out_dir = Path(args.results)
    for sub in ("student", "accuracy"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    (out_dir / "student" / f"{args.name}_{split}.json").write_text(json.dumps(report, indent=1) + "\n")
    if report["complete"]:
        (out_dir / "accuracy" / f"{args.name}_{split}.json").write_text(json.dumps(joined, indent=1) + "\n")
    print(f"{args.name}: {split}, {joined['protocol']}, folds {','.join(map(str, sorted(student)))}"
          f"{'' if report['complete'] else ' (not every fold: a partial result)'}")
    print(f"  student pair F1 {mean['pair']['f1']:.4f} ± {std['pair']['f1']:.4f}, emotion {mean['emotion']['f1']:.4f} "
          f"± {std['emotion']['f1']:.4f}, cause {mean['cause']['f1']:.4f} ± {std['cause']['f1']:.4f}")
    for what, key in (("--preset best", "vs_single"), ("teacher ensemble", "vs_teacher_ensemble")):
        d = report[key]
        ref = report["single" if key == "vs_single" else "teacher_ensemble"]["mean_same_folds"]
        print(f"  vs {what} ({ref['pair']:.4f} on these folds): " + describe(d))
    for name, d in report["vs_other"].items():
        print(f"  vs {name}: " + describe(d))
    if chosen:
        picks = [c["what"] for c in chosen.values()]
        print("  chosen on dev: " + ", ".join(f"{w} in {picks.count(w)} folds" for w in whats))
    r = report["teachers_reproduced"]
    print(f"  teachers equal to the committed runs: {r['same']} of {r['checked']} (fold, seed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
