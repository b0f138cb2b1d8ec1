"""Helpers the tests import (``from helpers import make_corpus``): tiny model settings, a tiny synthetic corpus,
a split writer. The fixtures built on them are in ``conftest.py``."""
from __future__ import annotations

import random
from pathlib import Path

from ecpe.data.corpus import Document, write_documents
from ecpe.inference import to_predictions

__all__ = ["TINY", "FILLER", "EMOTION_WORD", "CAUSE_WORDS", "make_corpus", "write_split", "decode_py"]

# tiny E2EECPE settings (paper: 200 / 50 / 300 / 100)
TINY = {"embed_dim": 16, "filters": 4, "hidden": 8, "vertex_dim": 8}

FILLER = ["今天", "我们", "去", "公园", "看到", "很多", "人", "天气", "不错", "他", "说", "事情", "发生", "在", "城市",
          "朋友", "早上", "晚上", "学校", "回家"]
EMOTION_WORD = "高兴"
CAUSE_WORDS = ["收到", "礼物"]


def make_corpus(n_docs: int = 40, seed: int = 0, min_len: int = 3, max_len: int = 8) -> list[Document]:
    """Documents of ``min_len``..``max_len`` clauses; clause e holds 高兴 and its cause is clause e - 1
    (which holds 收到 礼物). Some clauses have a single word (shorter than every CNN kernel)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        n = rng.randint(min_len, max_len)
        e = rng.randint(1, n - 1)
        clauses = []
        for k in range(n):
            words = rng.sample(FILLER, rng.choice([1, 2, 3, 4, 6]))
            if k == e:
                words.insert(rng.randint(0, len(words)), EMOTION_WORD)
            elif k == e - 1:
                words = words[:2] + CAUSE_WORDS
            clauses.append(words)
        docs.append(Document(str(i + 1), clauses, [(e, e - 1)]))
    return docs


def write_split(split_dir: Path, train: list[Document], test: list[Document], fold: int = 1) -> Path:
    split_dir.mkdir(parents=True, exist_ok=True)
    write_documents(train, split_dir / f"fold{fold}_train.txt")
    write_documents(test, split_dir / f"fold{fold}_test.txt")
    return split_dir


def decode_py(model, scores, batch, threshold=None, keep_matrix=False):
    """``model.decode`` turned into Prediction objects, as inference does."""
    return to_predictions(model.decode(scores, batch, threshold=threshold), keep_matrix)
