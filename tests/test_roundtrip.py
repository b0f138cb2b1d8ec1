"""End to end on a tiny synthetic corpus: NUSTM files -> ``ecpe train`` -> results.json and checkpoint ->
``Extractor`` / ``ecpe predict`` / ``ecpe evaluate``; reproducibility and resume."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import torch

from ecpe.cli import main
from ecpe.config import TrainConfig
from ecpe.data.corpus import load_fold
from ecpe.data.vocab import Vocab
from ecpe.models import build_model
from ecpe.data.text import segment
from ecpe.inference import Extractor, InputError
from ecpe.training import PROTOCOL_DEV, PROTOCOL_PAPER, Trainer, train_fold

SPLIT = "toy"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, make_docs, split_writer):
    docs = make_docs(40, seed=0)
    root = tmp_path_factory.mktemp("data")
    split_writer(root / SPLIT, docs[:32], docs[32:])
    return root


@pytest.fixture(scope="module")
def cli_run(data_dir, tmp_path_factory):
    """``ecpe train`` with the paper's dimensions, 3 epochs, one fold."""
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--data", str(data_dir), "--split", SPLIT, "--folds", "1", "--out", str(out),
               "--epochs", "3", "-q", "--threads", "1"])
    return out, rc


@pytest.fixture(scope="module")
def tiny_model_path(data_dir, tmp_path_factory):
    """A tiny model trained through ``train_fold`` (the CLI has no flags for tiny dimensions)."""
    out = tmp_path_factory.mktemp("tiny")
    cfg = TrainConfig(epochs=3, batch_size=8, seed=3, threads=1)
    fold = load_fold(data_dir / SPLIT, 1)
    train_fold("e2eecpe", fold, {"embed_dim": 16, "filters": 4, "hidden": 8, "vertex_dim": 8}, cfg, out,
               progress=False)
    return out / "model.pt"


@pytest.fixture(scope="module")
def extractor(tiny_model_path):
    return Extractor.load(tiny_model_path)


# ---- train: results.json -----------------------------------------------------------------------------
def test_train_writes_documented_results(cli_run):
    out, rc = cli_run
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "e2eecpe"
    assert res["protocol"] == PROTOCOL_DEV == "dev-selected"
    assert res["split"] == SPLIT and res["folds"] == [1] and res["seed"] == 1
    assert res["config"]["train"]["epochs"] == 3 and res["config"]["train"]["select_on"] == "dev"
    assert res["config"]["model"]["embed_dim"] == 200
    for k in ("p", "r", "f1"):
        assert 0.0 <= res["mean"]["pair"][k] <= 1.0
        assert res["std"]["pair"][k] == 0.0  # one fold
    assert len(res["per_fold"]) == 1
    f = res["per_fold"][0]
    for key in ("fold", "pair", "emotion", "cause", "best_epoch", "best_epochs", "stage_seconds"):
        assert key in f, key
    assert f["fold"] == 1
    assert 1 <= f["best_epoch"] <= 3
    assert list(f["stage_seconds"]) == ["model"] and f["best_epochs"] == {"model": f["best_epoch"]}
    assert len(f["stage_seconds"]["model"]) == 3 and all(s > 0 for s in f["stage_seconds"]["model"])
    for task in ("pair", "emotion", "cause"):
        assert res["mean"][task]["f1"] == pytest.approx(f[task]["f1"])
    assert f["pair"]["gold"] == 8  # one gold pair per test document
    assert (out / "fold1" / "model.pt").exists() and (out / "fold1" / "result.json").exists()
    # the reported test figures belong to the epoch with the best dev score, restored after training
    fold_res = json.loads((out / "fold1" / "result.json").read_text())
    dev_scores = [e["dev_score"] for e in fold_res["history"]]
    assert fold_res["best_epoch"] == dev_scores.index(max(dev_scores)) + 1
    assert fold_res["dev"]["pair"]["f1"] == pytest.approx(max(dev_scores))


def test_select_on_test_is_labelled_and_not_reused_from_a_dev_run(cli_run, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(cli_run[0], out)
    argv = ["train", "--data", str(data_dir), "--split", SPLIT, "--folds", "1", "--out", str(out),
            "--epochs", "2", "-q", "--threads", "1", "--select-on", "test"]
    assert main(argv) == 2  # the dev-selected fold is neither reused nor silently replaced
    assert "select_on dev -> test" in capsys.readouterr().err
    rc = main([*argv, "--overwrite"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == PROTOCOL_PAPER == "paper: best epoch on test"
    f = json.loads((out / "fold1" / "result.json").read_text())
    assert f["protocol"] == PROTOCOL_PAPER  # the finished dev-selected fold was not reused
    assert len(f["history"]) == 2
    test_scores = [e["test_score"] for e in f["history"]]
    assert f["pair"]["f1"] == pytest.approx(max(test_scores))
    ckpt = torch.load(out / "fold1" / "model.pt", weights_only=True)
    assert ckpt["meta"]["protocol"] == PROTOCOL_PAPER


def test_train_resumes_finished_folds(cli_run, data_dir):
    out, _ = cli_run
    model, result = out / "fold1" / "model.pt", out / "fold1" / "result.json"
    before = (model.stat().st_mtime_ns, result.stat().st_mtime_ns, result.read_text())
    summary_before = json.loads((out / "results.json").read_text())
    rc = main(["train", "--data", str(data_dir), "--split", SPLIT, "--folds", "1", "--out", str(out),
               "--epochs", "3", "-q", "--threads", "1"])
    assert rc == 0
    assert (model.stat().st_mtime_ns, result.stat().st_mtime_ns, result.read_text()) == before
    summary = json.loads((out / "results.json").read_text())
    assert summary["per_fold"] == summary_before["per_fold"] and summary["mean"] == summary_before["mean"]


def test_train_rejects_bad_arguments(data_dir, tmp_path, capsys):
    assert main(["train", "--data", str(data_dir), "--split", SPLIT, "--folds", "7", "--out", str(tmp_path)]) == 2
    assert "fold" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


# ---- the checkpoint --------------------------------------------------------------------------------
def test_checkpoint_loads_with_weights_only(tiny_model_path):
    """Regression: versions.torch used to be a TorchVersion object, which weights_only loading refuses."""
    ckpt = torch.load(tiny_model_path, weights_only=True)
    assert type(ckpt["versions"]["torch"]) is str
    assert Extractor.load(tiny_model_path).model.config.hidden == 8


def _plain(x) -> bool:
    if isinstance(x, dict):
        return all(type(k) is str and _plain(v) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return all(_plain(v) for v in x)
    return x is None or type(x) in (str, int, float, bool) or isinstance(x, torch.Tensor)


def test_checkpoint_is_plain_data(cli_run):
    path = cli_run[0] / "fold1" / "model.pt"
    ckpt = torch.load(path, weights_only=True)
    for key in ("config", "vocab", "preprocess", "state_dict", "versions"):
        assert key in ckpt, key
    assert ckpt["model"] == "e2eecpe"
    assert ckpt["config"]["embed_dim"] == 200 and ckpt["config"]["kernel_sizes"] == [2, 3, 4, 5]
    assert ckpt["vocab"][:2] == ["<pad>", "<unk>"] and "高兴" in ckpt["vocab"]
    assert ckpt["preprocess"] == {"segmenter": "jieba"}
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())
    assert ckpt["state_dict"]["embed.weight"].shape == (len(ckpt["vocab"]), 200)
    assert set(ckpt["versions"]) >= {"ecpe", "torch"}
    assert ckpt["meta"]["split"] == SPLIT and ckpt["meta"]["fold"] == 1
    assert _plain(ckpt)


# ---- extraction from raw text -------------------------------------------------------------------------
def check_result(r: dict, n_clauses: int, threshold: float = 0.3) -> None:
    assert set(r) >= {"clauses", "pairs", "emotion_prob", "cause_prob"}
    assert len(r["clauses"]) == n_clauses and all(isinstance(c, str) for c in r["clauses"])
    assert len(r["emotion_prob"]) == n_clauses and len(r["cause_prob"]) == n_clauses
    assert all(0.0 <= v <= 1.0 for v in r["emotion_prob"] + r["cause_prob"])
    scores = [p["score"] for p in r["pairs"]]
    assert scores == sorted(scores, reverse=True)
    for p in r["pairs"]:
        assert set(p) == {"emotion", "cause", "score"}
        assert 0 <= p["emotion"] < n_clauses and 0 <= p["cause"] < n_clauses
        assert threshold - 1e-4 <= p["score"] <= 1.0
    assert len({(p["emotion"], p["cause"]) for p in r["pairs"]}) == len(r["pairs"])
    json.dumps(r)  # JSON-serialisable


TEXT = "昨天早上，他收到礼物，老人非常高兴。我们回家。"


def test_extract_raw_text(extractor):
    r = extractor.extract(TEXT)
    assert r["clauses"] == ["昨天早上", "他收到礼物", "老人非常高兴", "我们回家"]
    check_result(r, 4)
    # the pairs are exactly the cells of M-hat above eta
    m = extractor.extract(TEXT, matrix=True)
    mat = m["pair_matrix"]
    assert len(mat) == 4 and all(len(row) == 4 for row in mat)
    assert m["pairs"] == r["pairs"]
    got = {(p["emotion"], p["cause"]): p["score"] for p in m["pairs"]}
    for e in range(4):
        for c in range(4):
            if mat[e][c] > 0.3 + 1e-4:
                assert got[(e, c)] == mat[e][c]
            elif mat[e][c] < 0.3 - 1e-4:
                assert (e, c) not in got
    # a threshold of 0 reports every cell, 1 none
    assert len(extractor.extract(TEXT, threshold=0.0)["pairs"]) == 16
    assert extractor.extract(TEXT, threshold=1.0)["pairs"] == []


@pytest.mark.parametrize("text", ["", "   ", "，。！", "\n"])
def test_extract_empty_text(extractor, text):
    r = extractor.extract(text)
    assert r == {"clauses": [], "pairs": [], "emotion_prob": [], "cause_prob": []}
    assert extractor.extract({"clauses": []}) == r
    assert extractor.extract(text, matrix=True)["pair_matrix"] == []


def test_extract_text_without_punctuation_is_one_clause(extractor):
    r = extractor.extract("老人收到礼物非常高兴")
    check_result(r, 1)
    assert r["clauses"] == ["老人收到礼物非常高兴"]


def test_extract_other_script(extractor):
    r = extractor.extract("Hello world. I am happy!")
    check_result(r, 2)
    assert r["clauses"] == ["Hello world", "I am happy"]
    r = extractor.extract("Привет, мир! 3.5 раза")
    check_result(r, 3)


def test_extract_thousand_clause_document(extractor):
    # eta = 0.9 keeps the test fast: at eta = 0.3 a barely trained model reports ~600,000 pairs here,
    # which takes seconds to build (Python work per reported pair)
    r = extractor.extract("老人很高兴，" * 999 + "他收到礼物。", threshold=0.9)
    check_result(r, 1000, threshold=0.9)
    assert r["clauses"][-1] == "他收到礼物"


def test_extract_presplit_and_presegmented_match_raw_text(extractor):
    raw = extractor.extract(TEXT)
    split = extractor.extract({"clauses": raw["clauses"]})
    seg = extractor.extract({"clauses": [segment(c) for c in raw["clauses"]]})
    text = extractor.extract({"text": TEXT})
    for r in (split, seg, text):
        assert r == raw
    r = extractor.extract({"clauses": [["老人", "很", "高兴"], ["他", "收到", "礼物"]]})
    check_result(r, 2)
    assert r["clauses"] == ["老人很高兴", "他收到礼物"]


def test_extract_many_matches_one_by_one(extractor):
    items = [TEXT, "", "老人很高兴", {"clauses": ["他收到礼物", "很高兴", "回家", "晚上", "天气不错"]}, "Hello. World!"]
    many = extractor.extract_many(items)
    assert len(many) == len(items)
    for item, r in zip(items, many):
        one = extractor.extract(item)
        assert r["clauses"] == one["clauses"]
        assert [(p["emotion"], p["cause"]) for p in r["pairs"]] == [(p["emotion"], p["cause"]) for p in one["pairs"]]
        assert r["emotion_prob"] == pytest.approx(one["emotion_prob"], abs=2e-4)
        assert [p["score"] for p in r["pairs"]] == pytest.approx([p["score"] for p in one["pairs"]], abs=2e-4)


@pytest.mark.parametrize("bad", [123, None, {"foo": "bar"}, {"clauses": "abc"}, {"clauses": [1, 2]},
                                 {"clauses": ["a", ["b"]]}, {"text": 5}])
def test_extract_rejects_bad_input(extractor, bad):
    with pytest.raises(InputError):
        extractor.extract(bad)


@pytest.mark.parametrize("item", [{"clauses": ["，"]}, {"clauses": [[]]}])
def test_extract_presplit_empty_clause_only(extractor, item):
    check_result(extractor.extract(item), 1)


def test_extract_clause_limit(tiny_model_path):
    ex = Extractor.load(tiny_model_path, max_clauses=5)
    with pytest.raises(InputError, match="limit"):
        ex.extract("一，二，三，四，五，六")
    check_result(ex.extract("一，二，三，四，五"), 5)


# ---- ecpe predict / evaluate ---------------------------------------------------------------------------
def test_cli_predict_jsonl(cli_run, tmp_path):
    model = cli_run[0] / "fold1" / "model.pt"
    inp, outp = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("\n".join([
        json.dumps({"text": TEXT}, ensure_ascii=False),
        json.dumps({"clauses": ["他收到礼物", "老人很高兴"]}, ensure_ascii=False),
        "",
        "老人很高兴，他收到礼物",  # a plain line is a text
        json.dumps({"clauses": [["老人", "很", "高兴"]]}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    rc = main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q"])
    assert rc == 0
    rows = [json.loads(line) for line in outp.read_text(encoding="utf-8").splitlines()]
    assert [len(r["clauses"]) for r in rows] == [4, 2, 2, 1]
    assert rows[1]["clauses"] == ["他收到礼物", "老人很高兴"]
    assert rows[2]["clauses"] == ["老人很高兴", "他收到礼物"]
    for r in rows:
        check_result(r, len(r["clauses"]))


def test_cli_predict_input_honours_threshold_and_matrix(cli_run, tmp_path):
    """--threshold and --matrix apply to --input files as to texts given as arguments."""
    model = cli_run[0] / "fold1" / "model.pt"
    inp = tmp_path / "in.jsonl"
    inp.write_text("老人很高兴，他收到礼物，大家都笑了\n" * 3, encoding="utf-8")
    outs = {}
    for name, extra in (("all", ["--threshold", "0", "--matrix"]), ("none", ["--threshold", "1"])):
        outp = tmp_path / f"{name}.jsonl"
        assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q", *extra]) == 0
        outs[name] = [json.loads(line) for line in outp.read_text(encoding="utf-8").splitlines()]
    for r in outs["all"]:  # every pair inside the document has M-hat > 0 (position weights > 0)
        assert len(r["pairs"]) == 9 and len(r["pair_matrix"]) == 3
    assert all(r["pairs"] == [] and "pair_matrix" not in r for r in outs["none"])


def test_cli_predict_text_argument(cli_run, capsys):
    model = cli_run[0] / "fold1" / "model.pt"
    rc = main(["predict", "--model", str(model), "老人很高兴，他收到礼物", "--matrix"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out.strip())
    check_result(r, 2)
    assert len(r["pair_matrix"]) == 2


def test_cli_predict_text_over_the_clause_limit(cli_run, capsys):
    model = cli_run[0] / "fold1" / "model.pt"
    assert main(["predict", "--model", str(model), "好，" * 2001]) == 2
    assert "limit" in capsys.readouterr().err


def test_cli_predict_malformed_json_line(cli_run, tmp_path, capsys):
    """By default a bad line is an error record in its place and the job goes on (exit status 1);
    with --on-error fail it stops the job (exit status 2) naming the file and line."""
    model = cli_run[0] / "fold1" / "model.pt"
    inp, outp = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"text": "老人很高兴"}\n\n{"text": "他收到礼物"\n{"text": "ok"}\n', encoding="utf-8")
    rc = main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q"])
    assert rc == 1
    rows = [json.loads(line) for line in outp.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and rows[1]["line"] == 3 and "JSON" in rows[1]["error"] and "clauses" in rows[2]
    assert "1 errors" in capsys.readouterr().err
    rc = main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q", "--on-error", "fail"])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{inp}:3" in err and "JSON" in err


def test_cli_predict_bad_object_keeps_earlier_results(cli_run, tmp_path, capsys):
    model = cli_run[0] / "fold1" / "model.pt"
    inp, outp = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"text": "老人很高兴"}\n{"clauses": "not a list"}\n', encoding="utf-8")
    rc = main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q",
               "--on-error", "fail"])
    assert rc == 2
    assert f"{inp}:2" in capsys.readouterr().err
    assert len(outp.read_text(encoding="utf-8").splitlines()) == 1


def test_cli_predict_malformed_json_keeps_earlier_results(cli_run, tmp_path):
    model = cli_run[0] / "fold1" / "model.pt"
    inp, outp = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"text": "老人很高兴"}\n{"text": \n', encoding="utf-8")
    rc = main(["predict", "--model", str(model), "--input", str(inp), "--output", str(outp), "-q",
               "--on-error", "fail"])
    assert rc == 2
    assert len(outp.read_text(encoding="utf-8").splitlines()) == 1


def test_cli_evaluate_reproduces_training_figures(cli_run, data_dir, capsys):
    out, _ = cli_run
    model = out / "fold1" / "model.pt"
    fold = json.loads((out / "fold1" / "result.json").read_text())
    rc = main(["evaluate", "--model", str(model), "--data", str(data_dir / SPLIT), "--json"])
    assert rc == 0
    stdout = capsys.readouterr().out
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["file"].endswith("fold1_test.txt")
    for task in ("pair", "emotion", "cause"):
        assert rows[0][task] == fold[task]
    # a single file, and a folder without test files
    assert main(["evaluate", "--model", str(model), "--data", str(data_dir / SPLIT / "fold1_test.txt")]) == 0
    assert main(["evaluate", "--model", str(model), "--data", str(out)]) == 2
    assert "no documents" in capsys.readouterr().err


def test_cli_evaluate_table_goes_to_current_stdout(cli_run, data_dir):
    model = cli_run[0] / "fold1" / "model.pt"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["evaluate", "--model", str(model), "--data", str(data_dir / SPLIT)]) == 0
    assert "pair" in buf.getvalue() and "F1" in buf.getvalue()


# ---- reproducibility -----------------------------------------------------------------------------
def test_same_seed_same_model(data_dir, tmp_path, tiny_config):
    fold = load_fold(data_dir / SPLIT, 1)
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        cfg = TrainConfig(epochs=2, batch_size=8, seed=seed, threads=1)
        res = train_fold("e2eecpe", fold, tiny_config, cfg, tmp_path / name, progress=False)
        state = torch.load(tmp_path / name / "model.pt", weights_only=True)["state_dict"]
        runs.append((res, state))
    (a, sa), (b, sb), (c, sc) = runs
    for key in ("pair", "emotion", "cause", "dev", "best_epoch", "vocab_size", "n_train", "n_dev"):
        assert a[key] == b[key], key
    assert [e["loss"] for e in a["history"]] == [e["loss"] for e in b["history"]]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # another seed gives another model
    assert [e["loss"] for e in a["history"]] != [e["loss"] for e in c["history"]]


def test_trainer_keeps_the_best_epoch_and_stops_on_patience(make_docs, tiny_config):
    """Model selection: the weights of the best-scoring epoch are restored; training stops after
    ``patience`` epochs without improvement."""
    docs = make_docs(12, seed=1)
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config)
    train = model.tensorize(docs)
    f1s = iter([0.2, 0.6, 0.4, 0.5, 0.1, 0.9])  # best at epoch 2; epochs 3-4 bring no gain
    states = []

    def fake_evaluate(m, _):
        states.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return {"pair": {"f1": next(f1s)}}

    history = Trainer(TrainConfig(epochs=6, patience=2, batch_size=4, seed=1), progress=False).fit(
        model, train, train, evaluate_fn=fake_evaluate)
    assert history.best_epoch == 2 and history.best_score == 0.6
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]
    assert len(history.epoch_seconds) == 4
    assert any(not torch.equal(states[1][k], states[3][k]) for k in states[1])  # training moved on
    for k, v in model.state_dict().items():
        assert torch.equal(v, states[1][k]), k


def test_trainer_with_ema_scores_and_keeps_the_moving_average(make_docs, tiny_config):
    """--ema: after every step the averaged weights move by (1 - decay) towards the trained ones; they,
    not the trained weights, are scored each epoch and the best epoch's average is what the model keeps."""
    docs = make_docs(8, seed=2)
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config)
    train = model.tensorize(docs)
    f1s = iter([0.1, 0.5, 0.3, 0.2])  # best at epoch 2
    raw, scored = [], []
    names = [n for n, _ in model.named_parameters()]

    def fake_evaluate(m, _):
        assert m is not model
        raw.append({n: p.detach().clone() for n, p in model.named_parameters()})
        scored.append({n: p.detach().clone() for n, p in m.named_parameters()})
        return {"pair": {"f1": next(f1s)}}

    decay = 0.6
    history = Trainer(TrainConfig(epochs=4, patience=4, batch_size=len(docs), seed=1, ema=decay),
                      progress=False).fit(model, train, train, evaluate_fn=fake_evaluate)  # one step per epoch
    assert history.best_epoch == 2
    expected = raw[0]  # the first update copies the weights
    for k in range(1, 4):
        expected = {n: decay * expected[n] + (1 - decay) * raw[k][n] for n in names}
        for n in names:
            assert torch.allclose(scored[k][n], expected[n], atol=1e-6), (k, n)
    assert any(not torch.allclose(scored[3][n], raw[3][n]) for n in names)  # the average lags the training
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), scored[1][n]), n


def test_ema_flag_reaches_the_config_and_is_checked():
    from ecpe.cli import build_parser
    from ecpe.options import CLIError, train_config

    parse = build_parser().parse_args
    assert train_config(parse(["train", "--out", "x", "--ema", "0.99"])).ema == 0.99
    assert train_config(parse(["train", "--out", "x"])).ema == 0.0  # the paper: off
    for bad in ("1", "-0.1"):
        with pytest.raises(CLIError, match="--ema must be a decay per step"):
            train_config(parse(["train", "--out", "x", "--ema", bad]))
