"""Per fold, the candidate of highest dev pair F1 (ecpe choose; ecpe train --transfer-weight W1,W2,...): what is
kept, that only comparable runs are chosen between, and that a choice never replaces a trained run."""
from __future__ import annotations

import json

import pytest
from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.training import choose_per_fold

TINY = ["--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8", "--epochs", "2", "-q"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A split10 of two folds and three tiny runs of it: lr 0.01 and 0.002 (seed 1), and seed 2 (another dev share)."""
    root = tmp_path_factory.mktemp("choose")
    docs = make_corpus(48, seed=3)
    split = write_split(root / "split10", docs[:40], docs[40:], fold=1)
    write_split(split, docs[8:], docs[:8], fold=2)
    for name, flags in (("a", ["--lr", "0.01"]), ("b", ["--lr", "0.002"]), ("seed2", ["--seed", "2"])):
        assert main(["train", "--data", str(split), "--out", str(root / name), *TINY, *flags]) == 0
    return root


def _set_dev(run, k, f1):
    path = run / f"fold{k}" / "result.json"
    res = json.loads(path.read_text())
    res["dev"]["pair"]["f1"] = f1
    path.write_text(json.dumps(res))


def _result(run, k):
    return json.loads((run / f"fold{k}" / "result.json").read_text())


def test_each_fold_keeps_the_candidate_of_highest_dev_f1(runs, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for src, dst in ((runs / "a", a), (runs / "b", b)):
        dst.mkdir()
        for k in (1, 2):
            (dst / f"fold{k}").mkdir()
            (dst / f"fold{k}" / "model.pt").write_bytes((src / f"fold{k}" / "model.pt").read_bytes())
            (dst / f"fold{k}" / "result.json").write_text((src / f"fold{k}" / "result.json").read_text())
    _set_dev(a, 1, 0.5), _set_dev(b, 1, 0.6)   # fold 1: b
    _set_dev(a, 2, 0.4), _set_dev(b, 2, 0.4)   # fold 2: a tie, the first given
    out = tmp_path / "chosen"
    assert main(["choose", str(a), str(b), "--out", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["chosen"] == {"1": str(b), "2": str(a)} and summary["times_chosen"] == {str(a): 1, str(b): 1}
    assert summary["protocol"] == _result(a, 1)["protocol"] and summary["split"] == "split10"
    walls = [_result(r, k)["wall_seconds"] for r in (a, b) for k in (1, 2)]
    assert summary["candidates_fold_minutes"] == round(sum(walls) / 60, 1)   # the price: every candidate trained
    tests = [_result(b, 1)["pair"]["f1"], _result(a, 2)["pair"]["f1"]]
    assert summary["mean"]["pair"]["f1"] == pytest.approx(sum(tests) / 2)
    kept = _result(out, 1)
    assert kept["chosen"]["run"] == str(b) and kept["chosen"]["dev_pair_f1"] == {str(a): 0.5, str(b): 0.6}
    assert kept["checkpoint"] == str(out / "fold1" / "model.pt")
    assert (out / "fold1" / "model.pt").stat().st_ino == (b / "fold1" / "model.pt").stat().st_ino  # a hard link
    assert "F1" in capsys.readouterr().out
    # a chosen folder is a run folder: ecpe compare reads it, and a fold's model predicts
    assert main(["compare", str(out), "--baseline", str(runs / "a")]) == 0
    assert main(["predict", "--model", str(out / "fold1" / "model.pt"), "小明收到礼物，他很高兴。"]) == 0
    # a new choice replaces the earlier one (e.g. after dev scores changed or more folds finished)
    _set_dev(a, 1, 0.7)
    choose_per_fold([a, b], out)
    assert _result(out, 1)["chosen"]["run"] == str(a)
    assert (out / "fold1" / "model.pt").stat().st_ino == (a / "fold1" / "model.pt").stat().st_ino


def test_only_folds_every_candidate_holds(runs, tmp_path):
    partial = tmp_path / "partial"
    (partial / "fold1").mkdir(parents=True)
    for f in ("model.pt", "result.json"):
        (partial / "fold1" / f).write_bytes((runs / "b" / "fold1" / f).read_bytes())
    summary = choose_per_fold([runs / "a", partial], tmp_path / "out")
    assert summary["folds"] == [1] and summary["left_out"] == {2: [str(partial)]}
    assert not (tmp_path / "out" / "fold2").exists()


@pytest.mark.parametrize("other, message", [
    ("seed2", "other dev documents"),
    ("paper", "only runs whose epoch was selected on dev"),
])
def test_refuses_candidates_not_comparable_on_dev(runs, tmp_path, capsys, other, message):
    if other == "paper":
        split = runs / "split10"
        assert main(["train", "--data", str(split), "--out", str(tmp_path / "paper"), *TINY, "--folds", "1",
                     "--select-on", "test"]) == 0
        other_run = tmp_path / "paper"
        capsys.readouterr()
    else:
        other_run = runs / other
    assert main(["choose", str(runs / "a"), str(other_run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_never_replaces_a_trained_run(runs, tmp_path, capsys):
    assert main(["choose", str(runs / "a"), str(runs / "b"), "--out", str(runs / "a")]) == 2
    assert "is one of the candidates" in capsys.readouterr().err
    assert main(["choose", str(runs / "a"), str(runs / "b"), "--out", str(runs / "seed2")]) == 2
    assert "holds trained folds" in capsys.readouterr().err
    assert main(["choose", str(runs / "a"), "--out", str(tmp_path / "x")]) == 2
    assert "two runs or more" in capsys.readouterr().err
