"""`ecpe reproduce --quick`: the whole report pipeline on a tiny synthetic dataset (a smoke test)."""
from __future__ import annotations

import json

from conftest import make_corpus, write_split

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
    assert (out / "table4_eta.png").stat().st_size > 1000
    assert (out / "figure3_runtime.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "dev-selected" and res["folds"] == [1, 2]
    assert set(res["summaries"]) == {"e2eecpe", "e2eecpe-noaux", "e2eecpe-nopos", "indep", "inter-ce", "inter-ec"}
    assert set(res["nofilter"]) == {"indep-nofilter", "inter-ce-nofilter", "inter-ec-nofilter"}
    # the paired t-test ran over the two folds
    assert "pair.f1" in res["ttest"] and 0.0 <= res["ttest"]["pair.f1"]["p"] <= 1.0 or res["ttest"] == {}
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
