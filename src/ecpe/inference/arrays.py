"""Prediction of a chunk of documents with array operations only: clause words -> ids -> batches ->
scores -> pairs, and the results as dicts or JSON text built from arrays.

The path of :class:`~ecpe.inference.Extractor`. Per chunk of documents: the model builds the chunk's
tensors (``model.chunk_tensors``; E2EECPE looks the word ids up at once and cuts its batches from one
layout, :class:`~ecpe.data.batching.ChunkTensors`); each batch is decoded on the model's device (pairs
above eta with the model's one ``nonzero``; an ensemble averages its members' M-hat and clause
probabilities there first, :meth:`~ecpe.inference.Ensemble.forward`); what the documents need (their clause
probabilities, their pairs, optionally their pair matrices) is gathered on the device and moved to the
CPU once per chunk; rounding is done on arrays. Same results as :func:`ecpe.inference.predict_documents`
followed by per-value rounding (``tests/test_arrays.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .core import decode_batches

__all__ = ["ChunkResult", "predict_chunk", "round4", "result_dicts", "result_json"]


@dataclass
class ChunkResult:
    """Predictions for n documents as CPU arrays. Clause values of document i are at
    ``clause_starts[i] : clause_starts[i] + doc_lens[i]``; its pairs at ``pair_starts[i] : pair_starts[i + 1]``
    (sorted by descending score, ties in row-major order); its pair matrix (row-major, ``doc_lens[i] ** 2``
    values) at ``matrix_starts[i]`` when kept."""

    doc_lens: np.ndarray          # [n]
    clause_starts: np.ndarray     # [n]
    emotion_prob: np.ndarray      # [N] float (1/0 for a model without clause classifiers)
    cause_prob: np.ndarray        # [N]
    pairs: np.ndarray             # [K, 2] (emotion clause, cause clause), document by document
    pair_scores: np.ndarray       # [K]
    pair_starts: np.ndarray       # [n + 1]
    matrix: np.ndarray | None     # [sum n_i^2]
    matrix_starts: np.ndarray | None  # [n]


@torch.inference_mode()
def predict_chunk(model, docs: Sequence[Sequence[Sequence[str]]], threshold: float | None = None,
                  keep_matrix: bool = False, batch_size: int = 64) -> ChunkResult:
    """Predictions for documents given as clauses of words (each with at least one clause), from one
    model or an :class:`~ecpe.inference.Ensemble`, as arrays (see :class:`ChunkResult`): the model's
    ``chunk_tensors`` batched by length, decoded on its device (:func:`~ecpe.inference.decode_batches`)."""
    n = len(docs)
    doc_lens = np.fromiter(map(len, docs), dtype=np.int64, count=n)
    index, emo, cau, pairs, scores, mats = [], [], [], [], [], []
    decoded = decode_batches(model, model.chunk_tensors(docs), batch_size, threshold) if n else ()
    for batch, d in decoded:
        mask = batch.mask
        idx = torch.as_tensor(batch.index, dtype=torch.long, device=mask.device)
        index.append(idx)
        emo.append(d.emotion_prob[mask] if d.emotion_prob is not None else d.emotions[mask].float())
        cau.append(d.cause_prob[mask] if d.cause_prob is not None else d.causes[mask].float())
        pairs.append(torch.stack([idx[d.pairs[:, 0]], d.pairs[:, 1], d.pairs[:, 2]], 1))
        scores.append(d.pair_scores)
        if keep_matrix:
            mats.append(d.pair_prob[mask[:, :, None] & mask[:, None, :]])

    def cpu(parts, dtype=None):  # one transfer per chunk
        if not parts:
            return np.zeros(0, dtype=dtype or np.float32)
        return torch.cat(parts).cpu().numpy()

    order = cpu(index, np.int64).astype(np.int64)            # documents in the order they were run
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    run_lens = doc_lens[order]
    clause_starts = (np.cumsum(run_lens) - run_lens)[position]
    pair_rows = cpu(pairs, np.int64).reshape(-1, 3)
    pair_scores = cpu(scores)
    # by document, then descending score; ties keep the row-major order of decode (a stable sort)
    by = np.lexsort((-pair_scores, pair_rows[:, 0])) if len(pair_rows) else np.zeros(0, dtype=np.int64)
    pair_rows, pair_scores = pair_rows[by], pair_scores[by]
    pair_starts = np.searchsorted(pair_rows[:, 0], np.arange(n + 1), side="left")
    matrix = matrix_starts = None
    if keep_matrix:
        matrix = cpu(mats)
        sq = run_lens ** 2
        matrix_starts = (np.cumsum(sq) - sq)[position]
    return ChunkResult(doc_lens, clause_starts, cpu(emo), cpu(cau), pair_rows[:, 1:], pair_scores, pair_starts,
                       matrix, matrix_starts)


# ---- rounding and output -------------------------------------------------------------------------
_TIE = 1e-9  # |x * 1e4 - (k + 1/2)| below this: decided by Python's round (exact on the binary value)
# JSON text of k / 10000, k = 0..10000: what json.dumps writes for round(v, 4) of a probability
_DECIMALS = np.array([json.dumps(k / 10000) for k in range(10001)], dtype=object)


def round4(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``round(v, 4)`` of every value, as Python rounds (half to even on the exact binary value).

    Returns (the rounded values as float64, k = the values times 10^4 as int64, -1 where a value is not
    a non-negative finite number up to 1). ``rint(x * 1e4) / 1e4`` is Python's ``round`` whenever
    ``x * 1e4`` is exact (always for float32 values); the rare float64 value within rounding error of a
    half is rounded by Python.
    """
    x = np.asarray(values, dtype=np.float64)
    scaled = x * 1e4
    k = np.rint(scaled)
    out = k / 1e4
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < _TIE)
    for i in near.tolist():
        out[i] = round(float(x[i]), 4)
        k[i] = round(out[i] * 1e4)
    ok = np.isfinite(out) & (k >= 0) & (k <= 10000) & ~np.signbit(out)
    return out, np.where(ok, k, -1).astype(np.int64)


def _json_floats(values: np.ndarray) -> list[str]:
    """JSON text of ``round(v, 4)`` for each value (as ``json.dumps`` writes it)."""
    out, k = round4(values)
    text = _DECIMALS[np.maximum(k, 0)]
    for i in np.flatnonzero(k < 0).tolist():
        text[i] = json.dumps(float(out[i]))
    return text.tolist()


def result_dicts(res: ChunkResult, clauses: Sequence[Sequence[str]], where: Sequence[int],
                 matrix: bool = False) -> list[dict[str, Any]]:
    """One result dict per input (``clauses[j]``: its clause strings); ``where[i]`` is the input of the
    i-th document of ``res``; inputs without a document get empty results. See ``Extractor.extract_many``."""
    emo, cau, score = (round4(a)[0].tolist() for a in (res.emotion_prob, res.cause_prob, res.pair_scores))
    mat = round4(res.matrix)[0].tolist() if matrix and res.matrix is not None else None
    pairs = res.pairs.tolist()
    out: list[dict[str, Any]] = [{"clauses": texts, "pairs": [], "emotion_prob": [], "cause_prob": []} for texts in clauses]
    if matrix:
        for r in out:
            r["pair_matrix"] = []
    starts, ps = res.clause_starts.tolist(), res.pair_starts.tolist()
    for i, (j, n) in enumerate(zip(where, res.doc_lens.tolist())):
        r, a = out[j], starts[i]
        r["pairs"] = [{"emotion": e, "cause": c, "score": s}
                      for (e, c), s in zip(pairs[ps[i]:ps[i + 1]], score[ps[i]:ps[i + 1]])]
        r["emotion_prob"], r["cause_prob"] = emo[a:a + n], cau[a:a + n]
        if mat is not None:
            o = int(res.matrix_starts[i])
            r["pair_matrix"] = [mat[o + p * n:o + (p + 1) * n] for p in range(n)]
    return out


def result_json(res: ChunkResult, clauses: Sequence[Sequence[str]], where: Sequence[int],
                matrix: bool = False) -> list[str]:
    """The JSON text of :func:`result_dicts` (``json.dumps(r, ensure_ascii=False)`` of each), written from
    the arrays: numbers are formatted once per chunk, each document's text is joined from its slices."""
    emo, cau, score = (_json_floats(a) for a in (res.emotion_prob, res.cause_prob, res.pair_scores))
    mat = _json_floats(res.matrix) if matrix and res.matrix is not None else None
    pairs = res.pairs.tolist()
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    tail = ', "pair_matrix": []}' if matrix else "}"
    out = [f'{{"clauses": {dumps(list(texts))}, "pairs": [], "emotion_prob": [], "cause_prob": []{tail}'
           for texts in clauses]
    starts, ps = res.clause_starts.tolist(), res.pair_starts.tolist()
    for i, (j, n) in enumerate(zip(where, res.doc_lens.tolist())):
        a = starts[i]
        pair_text = ", ".join(f'{{"emotion": {e}, "cause": {c}, "score": {s}}}'
                              for (e, c), s in zip(pairs[ps[i]:ps[i + 1]], score[ps[i]:ps[i + 1]]))
        text = (f'{{"clauses": {dumps(list(clauses[j]))}, "pairs": [{pair_text}], '
                f'"emotion_prob": [{", ".join(emo[a:a + n])}], "cause_prob": [{", ".join(cau[a:a + n])}]')
        if mat is not None:
            o = int(res.matrix_starts[i])
            rows = ", ".join("[" + ", ".join(mat[o + p * n:o + (p + 1) * n]) + "]" for p in range(n))
            text += f', "pair_matrix": [{rows}]'
        out[j] = text + "}"
    return out
