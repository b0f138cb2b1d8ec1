"""Prediction with one model: batches grouped by length, decoded as tensors, turned into
:class:`~ecpe.metrics.Prediction` objects (plain Python) at the edge."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from ..errors import UsageError
from ..data.batching import DocBatch, DocTensors
from ..data.corpus import Document
from ..devices import model_device
from ..metrics import Prediction, score
from ..models.base import Decoded

__all__ = ["decode_batches", "to_predictions", "predict", "evaluate", "predict_docs", "predict_documents", "PRECISIONS",
           "set_precision", "scores_of"]

# inference precisions: the name users give -> the dtype the model's matrix products run in under autocast
# (None: float32 throughout). bf16 keeps the parameters, the word table, decoding and the returned scores in
# float32; on split10 (--preset best, 10 folds) it changed 2 of 2,035 predicted test pairs, pair F1 unchanged
# (benchmarks/precision.py, docs/results/speed/precision_bf16_best_split10.json).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def set_precision(model, precision: str = "fp32"):
    """Run ``model`` (or each member of an ensemble) in ``precision`` (a key of :data:`PRECISIONS`) when
    predicting; training is unaffected. Returns ``model``."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    for m in getattr(model, "models", None) or [model]:
        m.inference_dtype = PRECISIONS[precision]
    return model


def scores_of(model, batch: DocBatch) -> dict[str, torch.Tensor]:
    """``model(batch)`` in the model's inference precision (:func:`set_precision`): under autocast to
    that dtype, its floating scores returned as float32 so that decoding is the same code."""
    dtype = getattr(model, "inference_dtype", None)
    if dtype is None:
        return model(batch)
    with torch.autocast(batch.mask.device.type, dtype=dtype):
        scores = model(batch)
    return {k: v.float() if v.dtype == dtype else v for k, v in scores.items()}


@torch.inference_mode()
def decode_batches(model, tensors, batch_size: int = 64, threshold: float | None = None
                   ) -> Iterator[tuple[DocBatch, Decoded]]:
    """(batch, decoded) over every document of ``tensors`` (from ``model.tensorize`` or
    ``model.chunk_tensors``), in batches of documents of similar length (``batch.index`` says which), on the
    model's device. ``model``: anything with ``forward`` and ``decode`` (a model, a stage, an ensemble)."""
    model.eval()
    device = model_device(model)
    for batch in tensors.length_batches(batch_size):
        batch = batch.to(device)
        yield batch, model.decode(scores_of(model, batch), batch, threshold=threshold)


def to_predictions(decoded: Decoded, keep_matrix: bool = False) -> list[Prediction]:
    """The documents of a decoded batch as Python objects (0-based clause indices; pair scores, clause
    probabilities and, with ``keep_matrix``, the pair matrix as floats)."""
    lens = decoded.doc_lens.tolist()
    pairs: list[list[tuple[int, int, float]]] = [[] for _ in lens]
    for (b, p, q), v in zip(decoded.pairs.tolist(), decoded.pair_scores.tolist()):
        pairs[b].append((p, q, v))
    emotions: list[list[int]] = [[] for _ in lens]
    causes: list[list[int]] = [[] for _ in lens]
    for b, i in decoded.emotions.nonzero().tolist():  # row-major: ascending within a document
        if i < lens[b]:
            emotions[b].append(i)
    for b, i in decoded.causes.nonzero().tolist():
        if i < lens[b]:
            causes[b].append(i)
    ep = decoded.emotion_prob.tolist() if decoded.emotion_prob is not None else None
    cp = decoded.cause_prob.tolist() if decoded.cause_prob is not None else None
    out = []
    for b, n in enumerate(lens):
        matrix = decoded.pair_prob[b, :n, :n].tolist() if keep_matrix else None
        out.append(Prediction(pairs[b], emotions[b], causes[b], ep[b][:n] if ep is not None else None,
                              cp[b][:n] if cp is not None else None, matrix))
    return out


@torch.inference_mode()
def predict(model, tensors: DocTensors, batch_size: int = 64, threshold: float | None = None,
            keep_matrix: bool = False) -> list[Prediction]:
    """Predictions for every document of ``tensors`` (in their order); batches are grouped by length."""
    out: list[Prediction | None] = [None] * len(tensors)
    for batch, decoded in decode_batches(model, tensors, batch_size, threshold):
        for i, p in zip(batch.index, to_predictions(decoded, keep_matrix)):
            out[i] = p
    return out  # type: ignore[return-value]


def evaluate(model, tensors: DocTensors, threshold: float | None = None) -> dict[str, dict[str, float]]:
    """Pair / emotion / cause P/R/F1 of a model on tensors built from gold documents."""
    return score(tensors.docs, predict(model, tensors, threshold=threshold))


def predict_docs(model, docs: Sequence[Document], threshold: float | None = None, keep_matrix: bool = False,
                 batch_size: int = 64) -> list[Prediction]:
    """Predictions for ``docs`` (in their order) from one model or an :class:`~ecpe.inference.Ensemble`,
    each tensorized with the model's own vocabulary."""
    return predict(model, model.tensorize(docs), batch_size=batch_size, threshold=threshold, keep_matrix=keep_matrix)


predict_documents = predict_docs  # the name ``ecpe evaluate``, training and the analyses call it by
