"""The array path of prediction (ecpe.inference.arrays, ChunkTensors) against the per-document path it
replaces in Extractor: predict_documents -> Prediction objects -> per-value rounding."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, make_corpus

from ecpe.data.batching import ChunkTensors, DocTensors
from ecpe.data.corpus import Document, load_fold
from ecpe.data.vocab import Vocab
from ecpe.inference import Ensemble, Extractor, predict_documents
from ecpe.inference.arrays import _json_floats, round4
from ecpe.models import build_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecpe-zh"


def reference(model, items, threshold=None, matrix=False, batch_size=64):
    """What Extractor.extract_many returned before the array path (commit 342d6c8), for pre-segmented items."""
    words = [it["clauses"] for it in items]
    where = [i for i, w in enumerate(words) if w]
    preds = predict_documents(model, [Document(str(i), words[i]) for i in where], threshold=threshold,
                              keep_matrix=matrix, batch_size=batch_size)
    out = [{"clauses": ["".join(c) for c in w], "pairs": [], "emotion_prob": [], "cause_prob": [],
            **({"pair_matrix": []} if matrix else {})} for w in words]
    for i, p in zip(where, preds):
        r, n = out[i], len(words[i])
        r["pairs"] = [{"emotion": e, "cause": c, "score": round(s, 4)} for e, c, s in sorted(p.pairs, key=lambda t: -t[2])]
        r["emotion_prob"] = [round(v, 4) for v in p.emotion_prob] if p.emotion_prob is not None \
            else [1.0 if k in p.emotions else 0.0 for k in range(n)]
        r["cause_prob"] = [round(v, 4) for v in p.cause_prob] if p.cause_prob is not None \
            else [1.0 if k in p.causes else 0.0 for k in range(n)]
        if matrix:
            r["pair_matrix"] = [[round(v, 4) for v in row] for row in p.pair_prob]
    return out


def assert_same(got, want, tol=1e-6):
    """Pairs identical (clauses, order, scores within ``tol``), probabilities within ``tol``."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert list(g) == list(w)  # same keys, same order (the JSON is the same)
        assert g["clauses"] == w["clauses"]
        assert [(p["emotion"], p["cause"]) for p in g["pairs"]] == [(p["emotion"], p["cause"]) for p in w["pairs"]]
        for key in ("emotion_prob", "cause_prob"):
            assert np.allclose(g[key], w[key], rtol=0, atol=tol) and len(g[key]) == len(w[key])
        assert np.allclose([p["score"] for p in g["pairs"]], [p["score"] for p in w["pairs"]], rtol=0, atol=tol)
        if "pair_matrix" in w:
            assert len(g["pair_matrix"]) == len(w["pair_matrix"])
            for a, b in zip(g["pair_matrix"], w["pair_matrix"]):
                assert np.allclose(a, b, rtol=0, atol=tol) and len(a) == len(b)


def _docs(n=60, seed=0):
    rng = random.Random(seed)
    chars = list("天地人你我他好坏大小上下左右")
    word = lambda: "".join(rng.choice(chars) for _ in range(rng.randint(1, 3)))  # noqa: E731
    return [[[word() for _ in range(rng.randint(0 if rng.random() < 0.1 else 1, 12))]
             for _ in range(rng.randint(1, 9))] for _ in range(n)]


@pytest.mark.parametrize("char_backoff", [False, True])
def test_chunk_batches_equal_doc_tensor_batches(char_backoff):
    docs = _docs()
    vocab = Vocab([w for d in docs[:20] for c in d for w in c if len(w) < 3] + ["<unk>"])
    dt = DocTensors([Document(str(i), d) for i, d in enumerate(docs)], vocab, 7, 5, char_backoff=char_backoff)
    ct = ChunkTensors(docs, vocab, 7, 5, char_backoff=char_backoff)  # 7: some clauses are truncated
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    batches = list(ct.length_batches(16))
    assert len(batches) == 4
    for s, b in zip(range(0, len(docs), 16), batches):
        a = dt.batch(order[s:s + 16])
        assert a.index == b.index
        for f in ("words", "clause_lens", "flat_words", "clause_starts", "doc_lens", "clause_pos", "mask", "emotion",
                  "cause", "pairs"):
            x, y = getattr(a, f), getattr(b, f)
            assert x.dtype == y.dtype and torch.equal(x, y), f
        assert (a.unknown_chars is None) == (b.unknown_chars is None)
        if char_backoff:
            assert torch.equal(a.unknown_chars, b.unknown_chars)


def test_round4_is_python_round():
    rng = np.random.default_rng(0)
    x32 = np.concatenate([rng.random(20000, dtype=np.float32), np.float32([0.0, 1.0, 0.03125, 0.5, 1e-8])])
    x64 = np.concatenate([rng.random(20000), (np.arange(1000) + 0.5) / 1e4, [0.00005, 0.99995, 1 + 1e-9]])
    for x in (x32, x64):
        values = x.astype(np.float64).tolist()
        rounded, _ = round4(x)
        assert rounded.tolist() == [round(v, 4) for v in values]
        assert _json_floats(x) == [json.dumps(round(v, 4)) for v in values]
    odd = np.array([-0.0, -0.25, 1.5, math.nan, math.inf])
    assert _json_floats(odd) == [json.dumps(round(v, 4)) for v in odd.tolist()]


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    docs = make_corpus(30, seed=5, max_len=12)
    vocab = Vocab.build(c for d in docs[:20] for c in d.clauses)
    plain = build_model("e2eecpe", vocab, dict(TINY, threshold=0.3))
    backoff = build_model("e2eecpe", vocab, dict(TINY, threshold=0.3, char_backoff=True, max_clause_len=4))
    no_aux = build_model("e2eecpe", vocab, dict(TINY, threshold=0.3, use_aux=False))
    for m in (plain, backoff, no_aux):
        m.prepare_for_inference()
    return docs, plain, backoff, no_aux


@pytest.mark.parametrize("which", ["plain", "backoff", "no_aux", "ensemble"])
@pytest.mark.parametrize("matrix", [False, True])
def test_extractor_equals_the_per_document_path(tiny_models, which, matrix):
    docs, plain, backoff, no_aux = tiny_models
    model = {"plain": plain, "backoff": backoff, "no_aux": no_aux, "ensemble": None}[which]
    if model is None:
        model = Ensemble([plain, backoff])
    items = [{"clauses": d.clauses} for d in docs] + [{"clauses": []}, {"clauses": [["未知", "词"]]}]
    for threshold in (None, 0.0, 0.45):
        want = reference(model, items, threshold, matrix, batch_size=8)
        ex = Extractor(model, {"preprocess": {"segmenter": "jieba"}}, batch_size=8, chunk=12, pipeline=False)
        got = ex.extract_many(items, threshold=threshold, matrix=matrix)
        assert_same(got, want)
        assert got == want  # in fact equal: the same batches give the same floats
        lines = [json.dumps(it, ensure_ascii=False) for it in items]
        assert list(ex.extract_lines(lines, threshold=threshold, matrix=matrix, as_json=True)) == \
            [json.dumps(r, ensure_ascii=False) for r in want]


@pytest.mark.skipif(not (SHARED / "split10" / "fold1_test.txt").exists(), reason="NEWS data not present")
def test_extractor_equals_the_per_document_path_on_news():
    """split10 fold 1: a small E2EECPE trained for one epoch on the fold's training documents, run over
    its test documents at the model's threshold (no pair yet) and a low one (many pairs)."""
    from ecpe.training import make_optimizer

    fold = load_fold(SHARED / "split10", 1)
    torch.manual_seed(0)
    vocab = Vocab.build(c for d in fold.train for c in d.clauses)
    model = build_model("e2eecpe", vocab, {"embed_dim": 32, "filters": 16, "hidden": 16, "vertex_dim": 16})
    opt = make_optimizer(model.param_groups(1e-5), 0.01)
    model.train()
    for batch in model.tensorize(fold.train).batches(32, shuffle=True):
        opt.zero_grad()
        model.loss(model(batch), batch).backward()
        opt.step()
    model.prepare_for_inference()
    items = [{"clauses": d.clauses} for d in fold.test]
    ex = Extractor(model, {"preprocess": {"segmenter": "jieba"}}, pipeline=False)
    for threshold in (None, 0.02):  # 0.02: about 1,200 pairs
        want = reference(model, items, threshold)
        got = ex.extract_many(items, threshold=threshold)
        assert_same(got, want)
        if threshold == 0.02:
            assert sum(len(r["pairs"]) for r in got) > 100
    assert_same(ex.extract_many(items[:30], matrix=True), reference(model, items[:30], matrix=True))


def test_cli_predict_batch_size(tmp_path, capsys):
    from tiny_model import make_tiny_model

    from ecpe.cli import main

    model = make_tiny_model(tmp_path / "tiny.pt", threshold=0.3, rig=False)
    docs = make_corpus(20, seed=2, max_len=10)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"clauses": d.clauses}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    rows = {}
    for size in ("1", "64"):
        out = tmp_path / f"out{size}.jsonl"
        assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q",
                     "--batch-size", size]) == 0
        rows[size] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows["1"]) == 20
    assert_same(rows["64"], rows["1"], tol=1.01e-4)  # other batch shapes: float rounding, then 4 decimals
    assert main(["predict", "--model", str(model), "--batch-size", "0", "好"]) == 2
    assert "--batch-size" in capsys.readouterr().err
