"""Distillation: a student E2EECPE trained on its teachers' mean M-hat and auxiliary probabilities mixed
with the gold labels (ecpe train --teacher RUN ... --distill-weight W)."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.data.vocab import Vocab
from ecpe.models import build_model

TINY_FLAGS = ["--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8"]


def test_soft_targets_mix_gold_and_teacher(tiny_config):
    docs = make_corpus(6, seed=3)
    model = build_model("e2eecpe", Vocab.build(c for d in docs for c in d.clauses), tiny_config).eval()  # no dropout
    t = model.tensorize(docs)
    gold = model.loss(model(t.batch([0, 1])), t.batch([0, 1]))
    n = [len(d) for d in docs]
    teacher_pairs = [torch.full((k, k), 0.25) for k in n]
    emo, cau = torch.full((sum(n),), 0.5), torch.full((sum(n),), 0.125)
    t.set_soft_targets(teacher_pairs, emo, cau, 0.0)
    b = t.batch([0, 1])
    torch.testing.assert_close(model.loss(model(b), b), gold)      # weight 0: the gold loss
    t.set_soft_targets(teacher_pairs, emo, cau, 0.5)
    b = t.batch([0, 1])
    e, c = docs[0].pairs[0]
    assert b.pairs[0, e, c].item() == pytest.approx(0.5 + 0.125)  # (1 - w) * 1 + w * 0.25
    assert b.pairs[0, 0, 0].item() == pytest.approx(0.125) or (e, c) == (0, 0)
    assert b.emotion_target[0, e].item() == pytest.approx(0.75) and b.cause_target[0, c].item() == pytest.approx(0.5625)
    assert b.pairs[0, n[0]:, :].abs().sum() == 0                     # padding stays 0
    assert not torch.allclose(model.loss(model(b), b), gold)
    with pytest.raises(ValueError, match="weight"):
        t.set_soft_targets(teacher_pairs, emo, cau, 1.5)


def test_cli_student_from_teacher_runs(tmp_path, capsys):
    docs = make_corpus(30, seed=4)
    data = write_split(tmp_path / "split10", docs[:24], docs[24:])
    base = ["train", "--data", str(data), "--folds", "1", "--epochs", "1", "-q", *TINY_FLAGS]
    for s in (1, 2):
        assert main([*base, "--seed", str(s), "--out", str(tmp_path / f"t{s}")]) == 0
    out = tmp_path / "student"
    assert main([*base, "--teacher", str(tmp_path / "t1"), "--teacher", str(tmp_path / "t2"),
                 "--distill-weight", "0.7", "--out", str(out)]) == 0
    res = json.loads((out / "fold1" / "result.json").read_text())
    assert res["distillation"]["weight"] == 0.7 and len(res["distillation"]["teachers"]) == 2
    capsys.readouterr()
    # refused: a missing teacher, a weight without teachers, a two-stage student
    assert main([*base, "--teacher", str(tmp_path / "nope"), "--out", str(tmp_path / "s2")]) == 2
    assert "teacher model(s) not found" in capsys.readouterr().err
    assert main([*base, "--distill-weight", "0.5", "--out", str(tmp_path / "s3")]) == 2
    assert main(["train", "--data", str(data), "--folds", "1", "--epochs", "1", "-q", "--model", "inter-ec",
                 "--teacher", str(tmp_path / "t1"), "--out", str(tmp_path / "s4")]) == 2
    assert "distillation" in capsys.readouterr().err
