"""research/student_report.py and student_curve.py: students of per-fold preset folders against one model and
the teacher ensemble, the teachers' reproduction check, the join that the accuracy table reads, the curve."""
import json
import runpy
import sys
from pathlib import Path

import pytest

RESEARCH = Path(__file__).resolve().parents[1] / "research"


def _m(f1):
    return {"p": f1, "r": f1, "f1": f1}


def _fold(k, f1, **extra):
    return {"fold": k, "pair": _m(f1), "emotion": _m(f1 + 0.2), "cause": _m(f1 - 0.01), "dev": {"pair": _m(0.7)},
            "wall_seconds": 60.0, **extra}


def _results(path, folds, config=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({
        "model": "e2eecpe", "protocol": "dev-selected", "split": "split10", "seed": 1, "config": config or {},
        "per_fold": folds}))


def _script(name, args, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(RESEARCH / name), run_name="__main__")
    return done.value.code


def test_student_report_joins_folds_tests_and_checks_teachers(tmp_path, monkeypatch):
    single, ens = tmp_path / "single.json", tmp_path / "ens.json"
    single_f1 = {1: 0.50, 2: 0.55, 3: 0.60}
    single.write_text(json.dumps({"protocol": "dev-selected", "split": "split10",
                                  "per_fold": [_fold(k, f) for k, f in single_f1.items()]}))
    ens.write_text(json.dumps({"runs": ["a", "b"], "member_protocol": "dev-selected", "split": "split10",
                               "per_fold": [{"fold": k, "ensemble": _fold(k, f + 0.03)}
                                            for k, f in single_f1.items()]}))
    student_f1 = {1: 0.52, 2: 0.56, 3: 0.64}
    runs = []
    for k, f in student_f1.items():
        run = tmp_path / f"fold{k}"
        _results(run / "student", [_fold(k, f, transfer={"used": 1000 * k}, best_epoch=20)], {"train": {"seed": 1}})
        # the seed-1 teacher reproduces the committed run on folds 1 and 2, not on fold 3
        _results(run / "teachers" / "seed1", [_fold(k, single_f1[k] + (0.01 if k == 3 else 0))])
        runs.append(str(run))
    res = tmp_path / "results"
    (res / "accuracy").mkdir(parents=True)
    args = ["--runs", *runs, "--name", "st", "--single", str(single), "--teacher", str(ens), "--member", str(single),
            "--results", str(res), "--against", f"ens={ens}"]
    assert _script("student_report.py", args, monkeypatch) == 0
    rep = json.loads((res / "student" / "st_split10.json").read_text())
    assert rep["complete"] and rep["folds"] == [1, 2, 3]
    assert rep["student"]["mean"]["pair"]["f1"] == pytest.approx(0.5733333, abs=1e-6)
    assert rep["vs_single"]["pair"]["mean_diff"] == pytest.approx(0.0233333, abs=1e-6)
    assert rep["vs_single"]["pair"]["wins"] == 3 and 0 < rep["vs_single"]["pair"]["p"] < 1
    assert rep["vs_teacher_ensemble"]["pair"]["mean_diff"] == pytest.approx(-0.0066667, abs=1e-6)
    assert rep["vs_other"]["ens"] == rep["vs_teacher_ensemble"]
    assert rep["teachers_reproduced"]["checked"] == 3 and rep["teachers_reproduced"]["same"] == 2
    joined = json.loads((res / "accuracy" / "st_split10.json").read_text())  # the table's input, every fold
    assert [f["fold"] for f in joined["per_fold"]] == [1, 2, 3] and joined["protocol"] == "dev-selected"

    # a fold missing: a partial report, and no file for the table
    (tmp_path / "fold3" / "student" / "results.json").unlink()
    assert _script("student_report.py", [*args[:-4], "--results", str(tmp_path / "r2")], monkeypatch) == 0
    rep2 = json.loads((tmp_path / "r2" / "student" / "st_split10.json").read_text())
    assert not rep2["complete"] and rep2["folds"] == [1, 2]
    assert not (tmp_path / "r2" / "accuracy" / "st_split10.json").exists()

    # the curve: two points on the same folds; a point on other folds is refused
    (tmp_path / "r0").mkdir()
    rep0 = dict(rep, student=dict(rep["student"], transfer={}))
    (tmp_path / "r0" / "st0.json").write_text(json.dumps(rep0))
    png = tmp_path / "curve.png"
    points = ["--report", f"0={tmp_path / 'r0' / 'st0.json'}", "--report", f"all={res / 'student' / 'st_split10.json'}"]
    assert _script("student_curve.py", [*points, "--out", str(png)], monkeypatch) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = ["--report", f"2500={tmp_path / 'r2' / 'student' / 'st_split10.json'}"]
    assert _script("student_curve.py", [*points, *bad, "--out", str(png)], monkeypatch) == 2


def test_student_report_reads_runs_of_all_folds_and_chooses_per_fold_on_dev(tmp_path, monkeypatch):
    single, ens = tmp_path / "single.json", tmp_path / "ens.json"
    single.write_text(json.dumps({"protocol": "dev-selected", "split": "split10",
                                  "per_fold": [_fold(k, 0.5) for k in (1, 2, 3)]}))
    ens.write_text(json.dumps({"runs": ["a", "b"], "member_protocol": "dev-selected", "split": "split10",
                               "per_fold": [{"fold": k, "ensemble": _fold(k, 0.55)} for k in (1, 2, 3)]}))
    run = tmp_path / "runs"
    # two settings trained with --folds all; "w" has the higher dev F1 on fold 2 only, and lacks fold 3
    gold = [dict(_fold(k, 0.50 + k / 100), dev={"pair": _m(0.70)}) for k in (1, 2, 3)]
    weighted = [dict(_fold(k, 0.60), dev={"pair": _m(0.75 if k == 2 else 0.65)}) for k in (1, 2)]
    _results(run / "gold", gold)
    _results(run / "w", weighted)
    res = tmp_path / "results"
    args = ["--runs", str(run), "--what", "gold", "--what", "w", "--name", "ch", "--single", str(single),
            "--teacher", str(ens), "--results", str(res)]
    assert _script("student_report.py", args, monkeypatch) == 0
    rep = json.loads((res / "student" / "ch_split10.json").read_text())
    assert rep["folds"] == [1, 2] and not rep["complete"]  # only the folds both settings hold
    assert {k: c["what"] for k, c in rep["chosen_on_dev"].items()} == {"1": "gold", "2": "w"}
    assert rep["student"]["mean"]["pair"]["f1"] == pytest.approx((0.51 + 0.60) / 2)

    # one setting: every fold of the run, as one result the table can read
    args = ["--runs", str(run), "--what", "gold", "--name", "g", "--single", str(single), "--teacher", str(ens),
            "--results", str(res)]
    assert _script("student_report.py", args, monkeypatch) == 0
    joined = json.loads((res / "accuracy" / "g_split10.json").read_text())
    assert [f["fold"] for f in joined["per_fold"]] == [1, 2, 3] and joined["joined_from"] == [str(run / "gold")]
    assert "chosen_on_dev" not in joined
