"""Extractor chunks, pipelined (run on a worker thread while the next is prepared) or in turn: order and
errors kept either way."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY, make_corpus

from ecpe.data.vocab import Vocab
from ecpe.models import build_model
from ecpe.inference import Extractor, InputError


@pytest.fixture(scope="module", params=[True, False], ids=["pipelined", "in-turn"])
def extractor(request):
    torch.manual_seed(0)
    docs = make_corpus(10, seed=4)
    model = build_model("e2eecpe", Vocab.build(c for d in docs for c in d.clauses), dict(TINY, threshold=0.0))
    return Extractor(model, {"preprocess": {"segmenter": "jieba"}}, chunk=4, pipeline=request.param)


TEXTS = [f"今天我们去公园，看到很多人。{'他很高兴' * (i % 3 + 1)}，收到礼物。" for i in range(11)]


def test_extract_many_in_chunks_equals_one_by_one(extractor):
    many = extractor.extract_many(TEXTS)
    assert len(many) == 11
    assert many == [extractor.extract(t) for t in TEXTS]
    assert all(r["pairs"] for r in many)  # threshold 0: every cell is a pair


def test_extract_lines_keeps_results_before_a_bad_line(extractor):
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS[:6]] + ['{"text": 3}'] + TEXTS[6:]
    out = []
    with pytest.raises(InputError, match=r"in.jsonl:7: 'text' must be a string"):
        for r in extractor.extract_lines(lines, source="in.jsonl"):
            out.append(r)
    assert out == extractor.extract_many(TEXTS[:6])
    bad_json = TEXTS[:5] + ["{not json"]
    out = []
    with pytest.raises(InputError, match=r"x:6: invalid JSON"):
        for r in extractor.extract_lines(bad_json, source="x"):
            out.append(r)
    assert len(out) == 5
