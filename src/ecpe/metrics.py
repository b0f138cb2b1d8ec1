"""Precision / recall / F1 for pairs, emotion clauses and cause clauses (micro over a test set)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .data.corpus import Document

__all__ = ["PRF", "Prediction", "score", "mean_std"]


@dataclass
class PRF:
    """Counts of true positives, predictions and gold items; adds up over batches and folds."""

    tp: int = 0
    pred: int = 0
    gold: int = 0

    def add(self, predicted: Iterable, gold: Iterable) -> "PRF":
        predicted, gold = set(predicted), set(gold)
        self.tp += len(predicted & gold)
        self.pred += len(predicted)
        self.gold += len(gold)
        return self

    @property
    def p(self) -> float:
        return self.tp / self.pred if self.pred else 0.0

    @property
    def r(self) -> float:
        return self.tp / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.p, self.r
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "r": self.r, "f1": self.f1, "tp": self.tp, "pred": self.pred, "gold": self.gold}


@dataclass
class Prediction:
    """What a model extracts from one document (0-based clause indices)."""

    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (emotion, cause, score)
    emotions: list[int] = field(default_factory=list)
    causes: list[int] = field(default_factory=list)
    emotion_prob: list[float] | None = None
    cause_prob: list[float] | None = None
    pair_prob: list[list[float]] | None = None  # M-hat, rows = emotion clause, columns = cause clause


def score(docs: Sequence[Document], preds: Sequence[Prediction]) -> dict[str, dict[str, float]]:
    """Pair, emotion and cause P/R/F1, micro over all documents.

    A predicted pair is correct iff it has the document, emotion clause and cause clause of a gold pair.
    """
    if len(docs) != len(preds):
        raise ValueError(f"{len(docs)} documents but {len(preds)} predictions")
    pair, emo, cau = PRF(), PRF(), PRF()
    for i, (d, p) in enumerate(zip(docs, preds)):
        pair.add(((i, e, c) for e, c, _ in p.pairs), ((i, e, c) for e, c in d.pairs))
        emo.add(((i, e) for e in p.emotions), ((i, e) for e in d.emotions))
        cau.add(((i, c) for c in p.causes), ((i, c) for c in d.causes))
    return {"pair": pair.as_dict(), "emotion": emo.as_dict(), "cause": cau.as_dict()}


def mean_std(per_fold: Sequence[dict], tasks=("pair", "emotion", "cause")) -> tuple[dict, dict]:
    """Mean and (population-free, n-1) standard deviation over folds of each task's p, r and f1.

    F1 is averaged per fold, not recomputed from the averaged P and R (as in the papers).
    """
    mean, std = {}, {}
    for t in tasks:
        mean[t], std[t] = {}, {}
        for k in ("p", "r", "f1"):
            vals = [f[t][k] for f in per_fold if t in f]
            if not vals:
                continue
            mean[t][k] = statistics.fmean(vals)
            std[t][k] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return mean, std
