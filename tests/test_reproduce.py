"""`ecpe reproduce --quick`: the whole report pipeline on a tiny synthetic dataset (a smoke test)."""
from __future__ import annotations

import json
import math
import warnings

import pytest
from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.data.corpus import read_documents, write_documents


def make_dataset(root):
    root.mkdir(parents=True)
    docs = make_corpus(60, seed=3)
    write_documents(docs, root / "all_data_pair.txt")
    for k in (1, 2):
        test = docs[(k - 1) * 20:k * 20]
        train = [d for d in docs if d not in test]
        write_split(root / "split10", train, test, fold=k)
    return root


def test_reproduce_quick_writes_every_table(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "report"
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--quick", "-q"]) == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "Table 5", "Figure 3"):
        assert f"## {heading}" in report, heading
    # every table states its protocol and split; every model of Table 2 has a row
    assert report.count("dev-selected") >= 5 and "split10" in report
    for row in ("| Indep w/o filter |", "| Inter-CE |", "| Inter-EC |", "| E2EECPE |", "| E2EECPE w/o position |"):
        assert row in report, row
    # the paper's protocol is shown apart, labelled, read from the test scores recorded in the same runs
    assert "best epoch on the test fold, from the same runs (paper protocol: best epoch on test" in report
    # the report says which word vectors the models started from (the paper's are not distributed)
    assert "Word vectors: word2vec trained on the training documents" in report
    assert (out / "table4_eta.png").stat().st_size > 1000
    assert (out / "figure3_runtime.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "dev-selected" and res["folds"] == [1, 2]
    assert set(res["summaries"]) == {"e2eecpe", "e2eecpe-noaux", "e2eecpe-nopos", "indep", "inter-ce", "inter-ec"}
    assert set(res["nofilter"]) == {"indep-nofilter", "inter-ce-nofilter", "inter-ec-nofilter"}
    # the paired t-test of E2EECPE against Inter-EC ran over the two folds, for every measure on which the
    # two models' fold figures differ (identical figures have no t-test), with scipy's p-values
    from scipy.stats import ttest_rel

    e2e, iec = ({f["fold"]: f for f in res["summaries"][n]["per_fold"]} for n in ("e2eecpe", "inter-ec"))
    differ = {f"{t}.{m}" for t in ("emotion", "cause", "pair") for m in ("p", "r", "f1")
              if [e2e[k][t][m] for k in (1, 2)] != [iec[k][t][m] for k in (1, 2)]}
    assert differ and set(res["ttest"]) == differ
    for key, row in res["ttest"].items():
        t, m = key.split(".")
        assert row["folds"] == [1, 2]
        with warnings.catch_warnings():  # near-identical folds: scipy warns (ecpe.significance silences it)
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = ttest_rel([e2e[k][t][m] for k in (1, 2)], [iec[k][t][m] for k in (1, 2)]).pvalue
        assert row["p"] == pytest.approx(expected, nan_ok=True)
    variants = json.loads((out / "variants.json").read_text())
    assert [len(v) for v in variants["e2eecpe"]["eta"].values()] == [2] * 5
    # the Hard subset holds only single-pair documents (here: all of them)
    for h in variants["e2eecpe"]["hard"]:
        assert h["n_docs"] == len(read_documents(out / "quick-data" / "split10" / f"fold{h['fold']}_test.txt"))

    # resumable: a second invocation reuses every finished fold (no model file is rewritten)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/fold*/model.pt")}
    assert len(stamps) == 12
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--quick", "-q"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("runs/*/fold*/model.pt")}


def test_report_only_marks_partial_runs(tmp_path):
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "report"
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--quick", "-q", "--runs", "e2eecpe,inter-ec"]) == 0
    (out / "runs" / "inter-ec" / "fold2" / "result.json").unlink()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/fold*/model.pt")}
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--quick", "-q", "--report-only"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("runs/*/fold*/model.pt")}  # nothing trained
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "**Partial report**" in report and "- Inter-EC: folds 1" in report
    assert "Not started yet: " in report and "Indep" in report.split("Not started yet: ")[1].splitlines()[0]
    assert "| E2EECPE |" in report and "| Inter-EC |" in report


def fold_summary(values: dict[str, list[float]]) -> dict:
    """A run summary whose folds 1..n have the given pair F1s (other figures fixed)."""
    n = len(values["pair"])
    return {"per_fold": [{"fold": k + 1, **{t: {"p": 0.5, "r": 0.5, "f1": values[t][k]} for t in values}}
                         for k in range(n)]}


def test_statistics_step_ttest_and_nofilter_rows():
    from scipy.stats import ttest_rel

    from ecpe.experiments import compute_statistics

    e2e = fold_summary({"pair": [0.60, 0.64, 0.62], "emotion": [0.8, 0.8, 0.8], "cause": [0.7, 0.6, 0.7]})
    iec = fold_summary({"pair": [0.55, 0.60, 0.59], "emotion": [0.8, 0.8, 0.8], "cause": [0.6, 0.6, 0.6]})
    rows = [{"fold": k, **{t: {"p": 0.5, "r": 0.5, "f1": 0.5 + k / 10} for t in ("pair", "emotion", "cause")}}
            for k in (1, 2, 3)]
    variants = {"e2eecpe": {"nofilter": [], "full": [], "eta": {}}, "inter-ec": {"nofilter": rows, "full": [], "eta": {}}}
    stats = compute_statistics({"e2eecpe": e2e, "inter-ec": iec}, variants)
    t = stats["ttest"]
    assert set(t) == {"pair.f1", "cause.f1"}  # emotion F1 and every P / R are equal fold by fold
    assert t["pair.f1"]["p"] == pytest.approx(ttest_rel([0.60, 0.64, 0.62], [0.55, 0.60, 0.59]).pvalue)
    assert t["pair.f1"]["mean_diff"] == pytest.approx(0.04) and t["pair.f1"]["significant"]
    assert t["pair.f1"]["folds"] == [1, 2, 3] and not math.isnan(t["pair.f1"]["t"])
    assert stats["nofilter"]["inter-ec-nofilter"]["mean"]["pair"]["f1"] == pytest.approx(0.7)
    assert stats["eta_means"] == {}
    # one fold: no t-test
    one = compute_statistics({"e2eecpe": fold_summary({"pair": [0.6]}), "inter-ec": fold_summary({"pair": [0.5]})},
                             {})
    assert one["ttest"] == {}


def test_runtime_seconds_per_fold():
    from ecpe.experiments import _per_fold_seconds

    assert _per_fold_seconds({"model": [2.0, 2.0]}) == 2.0                   # E2EECPE: mean seconds per epoch
    assert _per_fold_seconds({"stage1": [1.0], "stage2": [2.0, 4.0]}) == 4.0  # two stages: summed


def summary_of(rows: list[dict]) -> dict:
    from ecpe.metrics import mean_std

    mean, std = mean_std(rows)
    return {"mean": mean, "std": std, "folds": [r["fold"] for r in rows],
            "per_fold": [{**r, "stage_seconds": {"model": [1.0, 2.0]}} for r in rows]}


def test_figures_and_report_steps_without_training(tmp_path):
    """The last steps of reproduce (figures, report) from given summaries and variants, nothing trained."""
    from ecpe.experiments import ETAS, compute_statistics, draw_figures, make_plan, write_report

    plan = make_plan(make_dataset(tmp_path / "data"), tmp_path / "out", runs=["e2eecpe", "inter-ec"])
    assert (plan.folds, plan.names, plan.label, plan.missing) == ([1, 2], ["e2eecpe", "inter-ec"], "dev-selected", [])

    def rows(f1s):
        return [{"fold": k, **{t: {"p": f, "r": f, "f1": f} for t in ("pair", "emotion", "cause")}}
                for k, f in zip((1, 2), f1s)]

    summaries = {"e2eecpe": summary_of(rows([0.6, 0.7])), "inter-ec": summary_of(rows([0.5, 0.55]))}
    variants = {"e2eecpe": {"eta": {str(e): rows([0.5, 0.6]) for e in ETAS}, "full": rows([0.6, 0.7]),
                            "hard": [{**r, "n_docs": 3} for r in rows([0.4, 0.5])], "nofilter": []},
                "inter-ec": {"eta": {}, "full": [], "hard": [], "nofilter": rows([0.45, 0.5])}}
    stats = compute_statistics(summaries, variants)
    assert stats["seconds"] == {"e2eecpe": {1: 1.5, 2: 1.5}, "inter-ec": {1: 1.5, 2: 1.5}}
    paths = draw_figures(plan.out, stats, "test machine")
    assert [p.name for p in paths] == ["table4_eta.png", "figure3_runtime.png"] and all(p.stat().st_size > 1000 for p in paths)
    report = write_report(plan, summaries, variants, stats, "test machine", 0.1).read_text(encoding="utf-8")
    assert "| E2EECPE | 0.6500" in report and "| Inter-EC w/o filter | 0.4750" in report
    for heading in ("Table 1", "Table 2", "Table 4", "Table 5", "Figure 3"):
        assert f"## {heading}" in report, heading
    assert "Inter-EC / E2EECPE: 1.0×" in report
    res = json.loads((plan.out / "results.json").read_text())
    assert set(res["ttest"]) == {f"{t}.{m}" for t in ("pair", "emotion", "cause") for m in ("p", "r", "f1")}
