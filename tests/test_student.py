"""Student training (ecpe train --transfer ...): gold + teacher-labelled transfer documents from tiny made-up
corpora, the weight / number / pseudo-label flags, no dev or test document, resumability, refusals."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from helpers import make_corpus, write_split

from ecpe import transfer
from ecpe.cli import build_parser, main
from ecpe.cli.train import _settle_weights
from ecpe.config import TrainConfig
from ecpe.data.corpus import load_fold
from ecpe.data.unlabelled import read_transfer
from ecpe.data.vocab import Vocab
from ecpe.models import build_model
from ecpe.training import MixedTensors, dev_split, load_transfer, pseudo_labels
from ecpe.training.student import set_transfer_targets

TINY_FLAGS = ["--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8"]
PEOPLE = ["小明", "老王", "阿姨", "学生", "司机", "邻居", "医生", "记者"]
PLACES = ["车站", "医院", "商店", "工厂", "村里", "河边", "楼下", "广场"]


@pytest.fixture
def split10(tmp_path):
    """A tiny split10 fold whose emotion clauses carry the keyword 高兴 (the field write_documents leaves null)."""
    docs = make_corpus(40, seed=5)
    d = write_split(tmp_path / "split10", docs[:32], docs[32:])
    p = d / "fold1_train.txt"
    p.write_text(p.read_text(encoding="utf-8").replace(",emotion,null,", ",emotion,高兴,"), encoding="utf-8")
    return d


@pytest.fixture
def corpora(monkeypatch, tmp_path, split10):
    """Made-up packaged corpora: 60 texts around a clause with 高兴, and one text that holds a test clause."""
    rng = random.Random(0)
    texts = []
    for i in range(60):
        who, where = rng.choice(PEOPLE), rng.choice(PLACES)
        clauses = [f"第{i}天{who}去了{where}", f"{who}在{where}收到礼物{i}", f"{who}非常高兴{i}", f"晚上{i}点回家",
                   f"{where}{i}号很安静"]
        texts.append("，".join(clauses) + "。")
    test_clause = "".join(load_fold(split10, 1).test[0].clauses[0])
    texts.append(f"{test_clause}，有人很高兴，大家都在，后来回家。")
    monkeypatch.setenv("ECPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(transfer, "corpus_texts", lambda name: iter(texts if name == "news" else []))
    monkeypatch.setattr(transfer, "package_version", lambda name: "test")
    monkeypatch.setattr(transfer, "DEFAULT_CORPORA", ("news",))
    monkeypatch.setitem(transfer.CORPORA, "news", lambda: iter(()))
    monkeypatch.setitem(transfer.CORPUS_PACKAGES, "news", "fake")
    real = transfer.build_fold
    monkeypatch.setattr(transfer, "build_fold", lambda *a, **k: real(*a, **{**k, "corpora": ("news",)}))
    return texts


def _train(split10, out, *flags):
    return main(["train", "--data", str(split10), "--folds", "1", "--epochs", "2", "-q", *TINY_FLAGS,
                 "--out", str(out), *flags])


def _losses(run):
    return [e["loss"] for e in json.loads((run / "fold1" / "result.json").read_text())["history"]]


@pytest.fixture
def teacher(split10, tmp_path):
    assert _train(split10, tmp_path / "teacher", "--seed", "1") == 0
    return tmp_path / "teacher"


def test_student_trains_on_gold_and_transfer_without_dev_or_test_documents(split10, corpora, teacher, tmp_path):
    assert _train(split10, tmp_path / "plain") == 0
    out = tmp_path / "student"
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", "auto") == 0
    res = json.loads((out / "fold1" / "result.json").read_text())
    info = res["transfer"]
    assert info["used"] == info["available"] > 30 and info["weight"] == 1.0
    assert res["distillation"]["teachers"] == [str(teacher / "fold1" / "model.pt")]
    assert _losses(out) != _losses(tmp_path / "plain")
    # what the student read: no document sharing a clause with a dev or test document (the planted text is gone)
    docs = read_transfer(out / "transfer" / "fold1_transfer.jsonl.gz")
    assert len(docs) == info["used"] and not any(d.doc_id.startswith("news:60:") for d in docs)
    fold = load_fold(split10, 1)
    _, dev, _ = dev_split(fold, 1, TrainConfig.dev_fraction)
    index = transfer.OverlapIndex([*dev, *fold.test])
    assert not any(index.shares(" ".join(c)) for d in docs for c in d.clauses)
    # the transfer words joined the vocabulary (so word dropout treats them as seen words)
    assert res["vocab_size"] > json.loads((tmp_path / "plain" / "fold1" / "result.json").read_text())["vocab_size"]


def test_weight_zero_or_no_documents_is_the_run_without_transfer(split10, corpora, teacher, tmp_path):
    assert _train(split10, tmp_path / "distilled", "--teacher", str(teacher)) == 0
    assert _train(split10, tmp_path / "w0", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-weight", "0") == 0
    assert _train(split10, tmp_path / "n0", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-docs", "0") == 0
    assert _losses(tmp_path / "w0") == _losses(tmp_path / "distilled") == _losses(tmp_path / "n0")
    assert _train(split10, tmp_path / "n5", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-docs", "5", "--transfer-weight", "0.5", "--transfer-batch-size", "2") == 0
    info = json.loads((tmp_path / "n5" / "fold1" / "result.json").read_text())["transfer"]
    assert info["used"] == 5 and info["weight"] == 0.5 and info["batch_size"] == 2
    assert _losses(tmp_path / "n5") != _losses(tmp_path / "distilled")
    # the same documents and batches at weight 1: only the transfer batches' loss scale differs
    assert _train(split10, tmp_path / "n5w1", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-docs", "5", "--transfer-batch-size", "2") == 0
    assert _losses(tmp_path / "n5w1") != _losses(tmp_path / "n5")


def test_mixed_batches_carry_the_transfer_weight(tiny_config):
    gold_docs, extra = make_corpus(10, seed=1), [d.__class__(f"t{d.doc_id}", d.clauses) for d in make_corpus(7, seed=2)]
    model = build_model("e2eecpe", Vocab.build(c for d in gold_docs + extra for c in d.clauses), tiny_config)
    gold, tr = model.tensorize(gold_docs), model.tensorize(extra)
    set_transfer_targets(tr, [(np.full((len(d), len(d)), 0.25, np.float32), np.full(len(d), 0.5, np.float32),
                               np.zeros(len(d), np.float32)) for d in extra])
    mixed = MixedTensors(gold, tr, 0.5, transfer_batch_size=3)
    batches = list(mixed.batches(4, shuffle=True, seed=3))
    per_gold_batch = float(gold.doc_lens.sum()) / 3
    assert len(batches) == 3 + 3 and [b.loss_weight for b in batches].count(1.0) == 3
    transfer_batches = [b for b in batches if b.emotion_target is not None]
    assert sum(b.batch_size for b in transfer_batches) == 7
    for b in transfer_batches:
        assert b.loss_weight == pytest.approx(0.5 * float(b.doc_lens.sum()) / per_gold_batch)
        assert float(b.pairs[0, 0, 0]) == 0.25 and float(b.emotion_target[0, 0]) == 0.5  # the teachers' targets
    assert [b.index for b in batches] == [b.index for b in mixed.batches(4, shuffle=True, seed=3)]  # seeded


def test_pseudo_labels_above_the_threshold_only():
    m1 = np.array([[0.9, 0.2], [0.5, 0.1]], np.float32)
    m2 = np.full((2, 2), 0.3, np.float32)
    kept, hard = pseudo_labels([(m1, np.array([0.8, 0.4]), np.array([0.7, 0.69])), (m2, np.zeros(2), np.zeros(2))], 0.7)
    assert kept == [0]                                       # no pair >= 0.7: dropped
    assert hard[0][0].tolist() == [[1, 0], [0, 0]] and hard[0][1].tolist() == [1, 0] and hard[0][2].tolist() == [1, 0]


def test_self_training_from_one_model(split10, corpora, teacher, tmp_path, capsys):
    assert main(["transfer", "build", "--data", str(split10), "--folds", "1", "--teacher", str(teacher),
                 "--out", str(tmp_path / "set")]) == 0
    out = tmp_path / "self"
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", str(tmp_path / "set"),
                  "--pseudo-threshold", "0.02") == 0
    res = json.loads((out / "fold1" / "result.json").read_text())
    assert "distillation" not in res                        # the gold documents keep their gold labels
    info = res["transfer"]
    assert info["pseudo_threshold"] == 0.02 and info["used"] == info["with_pseudo_pairs"]
    cfg = TrainConfig(transfer=str(tmp_path / "set"), pseudo_threshold=0.02)
    fold = load_fold(split10, 1)
    ts = load_transfer(cfg, fold, dev_split(fold, 1, cfg.dev_fraction)[1])
    assert all(set(np.unique(m).tolist()) <= {0.0, 1.0} and m.any() for m, _, _ in ts.targets)
    assert _train(split10, tmp_path / "none", "--teacher", str(teacher), "--transfer", str(tmp_path / "set"),
                  "--pseudo-threshold", "0.999") == 2           # no document keeps a pair: refused
    assert "--pseudo-threshold 0.999: no transfer document of fold 1" in capsys.readouterr().err
    # built for the dev share of seed 1: refused for seed 2's
    assert _train(split10, tmp_path / "s2", "--seed", "2", "--transfer", str(tmp_path / "set")) == 2


def test_dev_seed_shares_one_dev_share_between_seeds(split10, corpora, teacher, tmp_path):
    fold = load_fold(split10, 1)
    ids = {s: sorted(d.doc_id for d in dev_split(fold, s, TrainConfig.dev_fraction)[1]) for s in (1, 2)}
    assert ids[1] != ids[2]                                     # the two seeds draw other dev shares
    assert TrainConfig(seed=2).dev_share_seed == 2 and TrainConfig(seed=2, dev_seed=1).dev_share_seed == 1
    # a teacher of seed 2 that holds out seed 1's dev share: other weights, seed 1's dev documents
    assert _train(split10, tmp_path / "t2", "--seed", "2", "--dev-seed", "1") == 0
    t2 = json.loads((tmp_path / "t2" / "fold1" / "result.json").read_text())
    assert t2["recipe"]["train"]["dev_seed"] == 1 and t2["recipe"]["train"]["seed"] == 2
    assert _losses(tmp_path / "t2") != _losses(teacher)
    # the transfer set built for seed 1's dev share serves a student of seed 2 with --dev-seed 1
    assert main(["transfer", "build", "--data", str(split10), "--folds", "1", "--teacher", str(teacher),
                 "--teacher", str(tmp_path / "t2"), "--out", str(tmp_path / "set")]) == 0
    assert _train(split10, tmp_path / "s2", "--seed", "2", "--transfer", str(tmp_path / "set")) == 2
    assert _train(split10, tmp_path / "s2d1", "--seed", "2", "--dev-seed", "1",
                  "--transfer", str(tmp_path / "set")) == 0
    # and `transfer build --seed 2 --dev-seed 1` avoids that same dev share
    path, facts = transfer.build_fold(split10, 1, seed=2, dev_seed=1)
    assert facts["about"]["dev_ids"] == ids[1]
    # --preset student --dev-seed: every teacher holds out the student's dev share
    out = tmp_path / "preset"
    assert _train(split10, out, "--preset", "student", "--embeddings", "train", "--open-vocab", "0",
                  "--teacher-seeds", "1,2", "--dev-seed", "1") == 0
    for run in ("teachers/seed1", "teachers/seed2", "student"):
        assert json.loads((out / run / "fold1" / "result.json").read_text())["recipe"]["train"]["dev_seed"] == 1


def test_preset_student_trains_teachers_transfer_and_student_resumably(split10, corpora, tmp_path, capsys):
    flags = ["--embeddings", "train", "--open-vocab", "0", "--teacher-seeds", "1,2"]
    out = tmp_path / "run"
    assert _train(split10, out, "--preset", "student", *flags) == 0
    for d in ("teachers/seed1", "teachers/seed2", "student"):
        assert (out / d / "fold1" / "model.pt").is_file()
    res = json.loads((out / "student" / "fold1" / "result.json").read_text())
    assert len(res["transfer"]["teachers"]) == 2 and res["transfer"]["folder"] == str(out / "transfer")
    assert res["recipe"]["train"]["dev_seed"] is None
    assert res["recipe"]["train"]["transfer_weight"] == 0.1   # the preset's weight; the teachers train without one
    assert json.loads((out / "teachers/seed1" / "fold1" / "result.json").read_text())["recipe"]["train"][
        "transfer_weight"] is None
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/model.pt")}
    capsys.readouterr()
    assert _train(split10, out, "--preset", "student", *flags, "--rounds", "2") == 0   # round 1 reused, round 2 new
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    r2 = json.loads((out / "round2" / "student" / "fold1" / "result.json").read_text())
    assert r2["transfer"]["teachers"] == [str(out / "student" / "fold1" / "model.pt")]
    # a student recorded as the preset wrote it before its weight was 0.1 (weight None): refused under today's
    # preset, naming the weight; resumed, untouched, with --transfer-weight 1
    path = out / "student" / "fold1" / "result.json"
    old = json.loads(path.read_text())
    old["recipe"]["train"]["transfer_weight"] = None
    path.write_text(json.dumps(old))
    capsys.readouterr()
    assert _train(split10, out, "--preset", "student", *flags) == 2
    assert "transfer_weight 1.0 -> 0.1" in capsys.readouterr().err
    assert _train(split10, out, "--preset", "student", *flags, "--transfer-weight", "1") == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize("given, weight, weights", [((), 0.1, None), (("--transfer-weight", "1"), 1.0, None),
                                                    (("--transfer-weight", "0,1"), 0.0, [0.0, 1.0])])
def test_preset_student_weighs_transfer_at_0_1_unless_told(given, weight, weights):
    args = build_parser("student").parse_args(["train", "--out", "x", "--preset", "student", *given])
    _settle_weights(args)
    assert (args.transfer_weight, args.transfer_weights) == (weight, weights)


def test_several_weights_train_candidates_and_keep_the_dev_best_per_fold(split10, corpora, teacher, tmp_path, capsys):
    assert _train(split10, tmp_path / "distilled", "--teacher", str(teacher)) == 0
    out = tmp_path / "student"
    capsys.readouterr()
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", "auto", "--transfer-weight", "0,1") == 0
    assert "2 candidate fold(s) trained now" in capsys.readouterr().err
    assert _losses(out / "weight0") == _losses(tmp_path / "distilled")   # weight 0: the run without transfer
    assert _losses(out / "weight1") != _losses(out / "weight0")
    dev = {w: json.loads((out / w / "fold1" / "result.json").read_text())["dev"]["pair"]["f1"]
           for w in ("weight0", "weight1")}
    kept = json.loads((out / "fold1" / "result.json").read_text())
    assert kept["chosen"]["run"] == str(out / ("weight1" if dev["weight1"] > dev["weight0"] else "weight0"))
    assert json.loads((out / "results.json").read_text())["chosen_on_dev"] == [str(out / "weight0"),
                                                                               str(out / "weight1")]
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("weight*/fold1/model.pt")}
    capsys.readouterr()
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", "auto", "--transfer-weight", "0,1") == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps and "reusing" in capsys.readouterr().err
    # the preset: candidates under OUT/student/weightW, the choice in OUT/student, which the next round's teacher is
    flags = ["--preset", "student", "--embeddings", "train", "--open-vocab", "0", "--teacher", str(teacher),
             "--transfer-weight", "0.1,1", "--rounds", "2"]
    assert _train(split10, tmp_path / "preset", *flags) == 0
    assert {p.parent.name for p in (tmp_path / "preset" / "student").glob("weight*/fold1")} == {"weight0.1", "weight1"}
    r2 = json.loads((tmp_path / "preset" / "round2" / "student" / "fold1" / "result.json").read_text())
    assert r2["chosen"]["dev_pair_f1"] and r2["transfer"]["teachers"] == [
        str(tmp_path / "preset" / "student" / "fold1" / "model.pt")]


def test_several_weights_never_replace_a_trained_run(split10, corpora, teacher, tmp_path, capsys):
    out = tmp_path / "one"
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", "auto") == 0
    capsys.readouterr()
    assert _train(split10, out, "--teacher", str(teacher), "--transfer", "auto", "--transfer-weight", "0,1") == 2
    assert "holds trained folds" in capsys.readouterr().err
    assert not (out / "weight0").exists()   # refused before training


@pytest.mark.parametrize("flags, message", [
    (["--transfer", "auto", "--teacher", "t", "--transfer-weight", "1,1"], "a weight is given twice"),
    (["--transfer", "auto", "--teacher", "t", "--transfer-weight", "0.1,-1"], "--transfer-weight must be"),
    (["--transfer", "auto", "--teacher", "t", "--transfer-weight", "0,1", "--transfer-docs", "0"],
     "needs transfer documents"),
    (["--transfer-docs", "5"], "--transfer-docs needs --transfer"),
    (["--pseudo-threshold", "0.5"], "--pseudo-threshold needs --transfer"),
    (["--transfer", "auto"], "--transfer auto needs --teacher"),
    (["--transfer", "nowhere"], "--transfer nowhere: not a folder"),
    (["--transfer", "auto", "--teacher", "t", "--seeds", "1,2"], "--seeds does not go with --transfer"),
    (["--transfer", "auto", "--teacher", "t", "--refit"], "--refit"),
    (["--transfer", "auto", "--teacher", "t", "--pseudo-threshold", "0.5", "--distill-weight", "0.3"],
     "--distill-weight does not go with --pseudo-threshold"),
    (["--transfer", "auto", "--teacher", "t", "--pseudo-threshold", "1.5"], "--pseudo-threshold must be"),
    (["--transfer", "auto", "--teacher", "t", "--transfer-weight", "-1"], "--transfer-weight must be"),
    (["--transfer", "auto", "--teacher", "t", "--transfer-docs", "-2"], "--transfer-docs must be"),
    (["--rounds", "2"], "--rounds applies to --preset student"),
    (["--teacher-seeds", "1,2"], "--teacher-seeds applies to --preset student"),
    (["--model", "inter-ec", "--transfer", "auto"], "--transfer does not apply to model"),
])
def test_refusals_name_the_flag(split10, tmp_path, capsys, flags, message):
    assert main(["train", "--data", str(split10), "--folds", "1", "-q", "--out", str(tmp_path / "x"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_too_many_transfer_docs_is_refused(split10, corpora, teacher, tmp_path, capsys):
    assert _train(split10, tmp_path / "big", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-docs", "100000") == 2
    assert "--transfer-docs 100000: fold 1 has only" in capsys.readouterr().err


def test_sweep_refuses_several_weights_in_a_run(split10, corpora, teacher, tmp_path, capsys):
    assert _train(split10, tmp_path / "student", "--teacher", str(teacher), "--transfer", "auto",
                  "--transfer-docs", "3") == 0
    grid = tmp_path / "grid.toml"
    grid.write_text(f'data = "{split10}"\nfolds = "1"\n[runs]\nw = ["--teacher", "{teacher}", "--transfer", '
                    f'"{tmp_path / "student" / "transfer"}", "--transfer-weight", "0,1"]\n')
    capsys.readouterr()
    assert main(["sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    assert "runs.w: --transfer-weight with several weights" in capsys.readouterr().err


def test_sweep_refuses_a_run_that_builds_its_transfer_set(split10, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'data = "{split10}"\nfolds = "1"\n[runs]\nstudent = ["--preset", "student"]\n')
    assert main(["sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    assert "runs.student: --transfer auto and --preset student build" in capsys.readouterr().err
