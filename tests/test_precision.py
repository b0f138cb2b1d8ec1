"""Inference precision (ecpe.inference.set_precision, --precision): bf16 runs the model's matrix products under
bfloat16 autocast and hands float32 scores to the same decoding; fp32 is the default and unchanged."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TINY, make_corpus
from tiny_model import make_tiny_model

from ecpe.cli import main
from ecpe.data.vocab import Vocab
from ecpe.inference import Ensemble, Extractor, predict_documents, set_precision
from ecpe.inference.core import scores_of
from ecpe.models import build_model


@pytest.fixture(scope="module")
def model_and_docs():
    torch.manual_seed(0)
    docs = make_corpus(24, seed=3, max_len=10)
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    model = build_model("e2eecpe", vocab, dict(TINY, threshold=0.3)).eval()
    model.prepare_for_inference()
    return model, docs


def test_fp32_is_the_default_and_bf16_scores_come_back_float32(model_and_docs):
    model, docs = model_and_docs
    batch = model.tensorize(docs[:8]).batch(list(range(8)))
    assert model.inference_dtype is None
    with torch.inference_mode():
        ref = model(batch)
        assert all(torch.equal(ref[k], v) for k, v in scores_of(model, batch).items())  # fp32: model(batch) as is
        set_precision(model, "bf16")
        try:
            got = scores_of(model, batch)
        finally:
            set_precision(model, "fp32")
    assert model.inference_dtype is None
    assert set(got) == set(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype == torch.float32, k
        # bfloat16 keeps 8 bits of mantissa: the logits move by a few parts in a thousand, not more
        assert torch.allclose(got[k], ref[k], rtol=0.05, atol=0.05), k
        assert not torch.equal(got[k], ref[k]) or k == "pair_weights", f"{k}: bf16 did not change anything"


def test_bf16_predictions_match_fp32_within_rounding(model_and_docs):
    model, docs = model_and_docs
    ref = predict_documents(model, docs, keep_matrix=True)
    set_precision(model, "bf16")
    try:
        got = predict_documents(model, docs, keep_matrix=True)
    finally:
        set_precision(model, "fp32")
    for a, b in zip(got, ref):
        assert np.allclose(a.pair_prob, b.pair_prob, atol=0.02)
        assert np.allclose(a.emotion_prob, b.emotion_prob, atol=0.02)
        # a pair may only flip when its fp32 score lies within bf16's error of the threshold
        flipped = {(e, c) for e, c, _ in a.pairs} ^ {(e, c) for e, c, _ in b.pairs}
        assert all(abs(b.pair_prob[e][c] - 0.3) < 0.02 for e, c in flipped)


def test_ensemble_members_and_unknown_names(model_and_docs):
    model, _ = model_and_docs
    ens = Ensemble([model, model])
    set_precision(ens, "bf16")
    assert all(m.inference_dtype == torch.bfloat16 for m in ens.models)
    set_precision(ens, "fp32")
    assert model.inference_dtype is None
    with pytest.raises(ValueError, match="unknown precision 'fp8'.*fp32, bf16"):
        set_precision(model, "fp8")


def test_extractor_and_cli_take_precision(tmp_path, capsys):
    path = make_tiny_model(tmp_path / "tiny.pt")
    text = "昨天上午，警察把丢失的钱交给了老人。老人非常高兴。"
    ex32, ex16 = Extractor.load(path), Extractor.load(path, precision="bf16")
    assert (ex32.precision, ex16.precision) == ("fp32", "bf16")
    assert ex16.info["precision"] == "bf16"
    a, b = ex32.extract(text), ex16.extract(text)
    assert [(p["emotion"], p["cause"]) for p in a["pairs"]] == [(p["emotion"], p["cause"]) for p in b["pairs"]]
    assert main(["predict", "--model", str(path), "--precision", "bf16", text]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(p["emotion"], p["cause"]) for p in out["pairs"]] == [(p["emotion"], p["cause"]) for p in a["pairs"]]
    with pytest.raises(SystemExit) as e:
        main(["predict", "--model", str(path), "--precision", "half", text])
    assert e.value.code == 2
    assert "invalid choice: 'half'" in capsys.readouterr().err


def test_the_cached_word_table_stays_float32_whatever_ran_first(model_and_docs):
    """The word table (embeddings x CNN taps) is cached on first use: a bf16 call filling it must not make
    later fp32 predictions differ from those of a model that ran fp32 first."""
    model, docs = model_and_docs
    ref = predict_documents(model, docs, keep_matrix=True)
    model._word_table = None  # empty the cache, then fill it under bf16
    set_precision(model, "bf16")
    try:
        predict_documents(model, docs[:4])
        assert model._word_table[1].dtype == torch.float32
    finally:
        set_precision(model, "fp32")
    got = predict_documents(model, docs, keep_matrix=True)
    for a, b in zip(got, ref):
        assert np.array_equal(np.asarray(a.pair_prob), np.asarray(b.pair_prob))


def test_batch_jobs_take_precision(tmp_path):
    path = make_tiny_model(tmp_path / "tiny.pt")
    lines = [{"id": i, "text": "昨天上午，警察把丢失的钱交给了老人。老人非常高兴。"} for i in range(3)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    outs = {}
    for p in ("fp32", "bf16"):
        dst = tmp_path / f"out-{p}.jsonl"
        assert main(["predict", "--model", str(path), "--precision", p, "--input", str(src), "--output", str(dst),
                     "-q"]) == 0
        outs[p] = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in outs["bf16"]] == [0, 1, 2]
    assert [[(q["emotion"], q["cause"]) for q in r["pairs"]] for r in outs["bf16"]] == \
        [[(q["emotion"], q["cause"]) for q in r["pairs"]] for r in outs["fp32"]]
    # the option reached the model: bf16 moves the clause probabilities in their third or fourth decimal
    assert outs["bf16"][0]["emotion_prob"] != outs["fp32"][0]["emotion_prob"]
    assert np.allclose(outs["bf16"][0]["emotion_prob"], outs["fp32"][0]["emotion_prob"], atol=0.01)


# ---- training precision (TrainConfig.precision) ----------------------------------------------------------
def _train_one_epoch(precision: str, docs):
    from ecpe.config import TrainConfig
    from ecpe.training import Trainer

    torch.manual_seed(0)
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    model = build_model("e2eecpe", vocab, dict(TINY))
    train = model.tensorize(docs)
    losses = []
    loss_fn = model.loss

    def recording(scores, batch):
        assert all(v.dtype == torch.float32 for v in scores.values() if v.is_floating_point())
        value = loss_fn(scores, batch)
        losses.append(value.item())
        return value

    model.loss = recording
    Trainer(TrainConfig(epochs=1, batch_size=8, precision=precision), progress=False).fit(model, train, None)
    return model, losses


def test_bf16_training_runs_the_forward_in_bfloat16_and_keeps_float32_weights(model_and_docs):
    _, docs = model_and_docs
    ref_model, ref = _train_one_epoch("fp32", docs)
    model, got = _train_one_epoch("bf16", docs)
    assert len(got) == len(ref) == 3 and np.isfinite(got).all()
    assert got != ref                                    # other numerics: bf16 products
    assert np.allclose(got[0], ref[0], rtol=0.05)        # the same model (same initial weights) before any step
    assert all(p.dtype == torch.float32 for p in model.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(model.parameters(), ref_model.parameters())]
    assert any(changed)


def test_training_precision_is_checked():
    from ecpe.config import ConfigError, TrainConfig

    assert TrainConfig().precision == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp16")


def test_train_precision_flag_reaches_the_config_and_is_recorded(tmp_path):
    import json

    from helpers import make_corpus, write_split

    from ecpe.cli import main

    docs = make_corpus(24, seed=2)
    data = write_split(tmp_path / "split10", docs[:18], docs[18:])
    tiny = ["--epochs", "1", "--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8", "-q"]
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(tmp_path / "bf16"), *tiny,
                 "--precision", "bf16"]) == 0
    fold = json.loads((tmp_path / "bf16" / "fold1" / "result.json").read_text())
    assert fold["recipe"]["train"]["precision"] == "bf16"
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(tmp_path / "bf16"), *tiny]) == 2  # fp32


@pytest.mark.parametrize("settings", [{}, {"clause_context": "bilstm+attention"}, {"clause_encoder": "lstm"}])
def test_under_bf16_autocast_the_heads_log_softmax_in_float32(model_and_docs, settings):
    """bf16 training keeps log-probabilities (and attention weights) in float32: a log_softmax of bfloat16
    logits stays bfloat16 under CPU autocast, and its rounding against soft targets made students diverge."""
    _, docs = model_and_docs
    torch.manual_seed(0)
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    model = build_model("e2eecpe", vocab, dict(TINY, **settings)).train()
    batch = next(model.tensorize(docs).batches(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model(batch)
    assert scores["pair_logits"].dtype == torch.bfloat16        # the products did run in bfloat16
    for name in ("emotion", "cause"):
        assert scores[name].dtype == torch.float32
        torch.testing.assert_close(scores[name].exp().sum(-1), torch.ones(scores[name].shape[:-1]))
    model.loss({k: v.float() for k, v in scores.items()}, batch).backward()
    assert all(p.grad is None or torch.isfinite(p.grad.to_dense()).all() for p in model.parameters())
