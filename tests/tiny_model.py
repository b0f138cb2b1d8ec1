"""A tiny untrained E2EECPE checkpoint for tests and load checks of the service (no data, no training).

Its pair scores are rigged so that it always links each clause (as emotion) to the clause just before it
(as cause): M is a large constant, so M-hat equals the position weight A, which is 1 only at p - q = 1; with
the threshold at 0.9 only those pairs pass (for documents of fewer than 9 clauses). The result is
meaningless, but it is deterministic and never empty, which is what a browser test needs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ecpe.data.vocab import Vocab
from ecpe.models import build_model, save_model

__all__ = ["make_tiny_model", "TINY_WORDS"]

TINY_WORDS = ["昨天", "上午", "警察", "把", "丢失", "的", "钱", "交给", "了", "老人", "告诉", "他", "小偷", "已经",
              "被", "抓住", "非常", "高兴", "存进", "银行"]


def make_tiny_model(path: str | Path, threshold: float = 0.9, rig: bool = True) -> Path:
    """Write a tiny model to ``path`` and return the path. ``rig=False`` keeps the random weights."""
    torch.manual_seed(0)
    model = build_model("e2eecpe", Vocab(TINY_WORDS), {"embed_dim": 16, "filters": 4, "hidden": 8, "vertex_dim": 8,
                                                      "threshold": threshold})
    if rig:
        with torch.no_grad():
            model.cause_vertex.weight.zero_()
            model.cause_vertex.bias.fill_(1.0)      # z_c = 1 for every clause
            model.biaffine.affine.weight.zero_()
            model.biaffine.affine.bias.fill_(2.0)   # M_pq = 2 * dim = 16 -> sigmoid ~ 1
    meta = {"protocol": "untrained (tiny test model)", "split": "none", "fold": 0,
            "test": {"pair": {"p": 0.0, "r": 0.0, "f1": 0.0}}}
    return save_model(model, path, {"segmenter": "jieba"}, meta)
