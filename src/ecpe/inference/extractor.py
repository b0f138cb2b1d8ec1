"""Raw text in, emotion-cause pairs out, with a saved model."""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import torch

from ..errors import UsageError
from ..cache import find_model
from ..data.text import SEGMENTERS, prepare_text, segment
from ..devices import model_device, resolve_device
from .arrays import predict_chunk, result_dicts, result_json
from .card import model_card
from .core import PRECISIONS
from .ensemble import for_inference, load_models
from .inputs import LOCAL_LIMITS, InputError, check_document, check_max_clauses, is_blank

__all__ = ["Extractor", "InputError"]


class Prepared(NamedTuple):
    """One document ready for the model: the clause strings it is reported with, the words of the clauses the
    model reads, and which of the reported clauses those are (None: all of them). Blank clauses of a pre-split
    document are reported, with their index, but never read: their probabilities are 0 and no pair names them."""

    texts: list[str]
    words: list[list[str]]
    keep: list[int] | None = None


def _expand(r: dict[str, Any], keep: list[int], n: int) -> dict[str, Any]:
    """A result over the kept clauses of a document, in the indices of all its ``n`` clauses."""
    out = {**r}
    for key in ("emotion_prob", "cause_prob"):
        full = [0.0] * n
        for k, v in zip(keep, r[key]):
            full[k] = v
        out[key] = full
    out["pairs"] = [{**p, "emotion": keep[p["emotion"]], "cause": keep[p["cause"]]} for p in r["pairs"]]
    if "pair_matrix" in r:
        rows = [[0.0] * n for _ in range(n)]
        for i, row in zip(keep, r["pair_matrix"]):
            for j, v in zip(keep, row):
                rows[i][j] = v
        out["pair_matrix"] = rows
    return out


class Extractor:
    """A trained model plus the text preparation it was trained with.

    >>> ex = Extractor.load("runs/f1/fold1/model.pt")
    >>> ex.extract("昨天上午，警察把丢失的钱交给了老人。老人非常高兴。")["pairs"]
    """

    def __init__(self, model, checkpoint: dict[str, Any] | None = None, batch_size: int = 64,
                 max_clauses: int = LOCAL_LIMITS.max_clauses, chunk: int = 1024, pipeline: bool | None = None,
                 device: str | torch.device | None = None, segmenter: str | None = None,
                 precision: str | None = None):
        # precision: fp32 or bf16 (matrix products under bfloat16 autocast: faster on CPUs with AMX /
        # AVX-512 BF16 and on GPUs; see ecpe.inference.set_precision); None keeps the model's setting
        self.model = for_inference((model if device is None else model.to(resolve_device(device))).eval(), precision)
        self.checkpoint = checkpoint or {}
        pre = self.checkpoint.get("preprocess", {})
        # the model's segmenter, unless overridden (e.g. "jieba-py": the Python jieba even where rjieba is installed)
        self.segmenter: str = segmenter or pre.get("segmenter", "jieba")
        if self.segmenter not in SEGMENTERS:
            raise UsageError(f"unknown segmenter {self.segmenter!r}; choose one of {', '.join(SEGMENTERS)}")
        self.batch_size = batch_size
        self.max_clauses = check_max_clauses(max_clauses)
        # documents prepared / run per step of the pipeline; batches are cut from a chunk sorted by length, so a
        # bigger chunk pads less: on NEWS test documents, 1.45x the real clauses run through the BiLSTM with
        # chunks of 256 (batch 64), 1.09x with 1,024 (+25 % documents/s on one core, the same results)
        self.chunk = chunk
        # prepare the next chunk on the caller's thread while the model runs: only worth it with a core
        # to spare for it (None = when the machine has more cores than torch uses). On 2 cores with 2 torch
        # threads, jieba beside the model oversubscribes them: 376 raw docs/s pipelined against 476 in turn.
        self.pipeline = pipeline

    @classmethod
    def load(cls, path: str | Path | Sequence[str | Path] | None = None, device: str | torch.device | None = "cpu",
             **kwargs) -> "Extractor":
        """An extractor for a model file, or for several E2EECPE model files averaged as one
        (:class:`ecpe.inference.Ensemble`); without one, ``$ECPE_MODEL`` or the default model
        (:func:`ecpe.cache.find_model`). ``device``: cpu (default), cuda, cuda:N or auto; other keywords as
        for the constructor (``precision="bf16"``, ``batch_size``, ``segmenter`` ...)."""
        if path is None:
            path = find_model()
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        model, ckpts = load_models(paths, device=device)
        if len(ckpts) == 1:
            return cls(model, ckpts[0], **kwargs)
        segmenters = {ckpt.get("preprocess", {}).get("segmenter", "jieba") for ckpt in ckpts}
        if len(segmenters) > 1 and kwargs.get("segmenter") is None:
            raise UsageError(f"the models were trained with different segmenters ({', '.join(sorted(segmenters))}); "
                             "pass one (segmenter=...)")
        return cls(model, {**ckpts[0], "ensemble": [str(p) for p in paths]}, **kwargs)

    @property
    def info(self) -> dict[str, Any]:
        """Name, config, protocol and scores the model was trained with."""
        meta = self.checkpoint.get("meta", {})
        return {"model": self.checkpoint.get("model", self.model.name),
                **({"ensemble": self.checkpoint["ensemble"]} if "ensemble" in self.checkpoint else {}),
                "config": self.checkpoint.get("config", {}), "preprocess": self.checkpoint.get("preprocess", {}),
                "versions": self.checkpoint.get("versions", {}), "device": str(model_device(self.model)),
                "precision": self.precision, "card": model_card(self.checkpoint) if self.checkpoint else {},
                **{k: meta[k] for k in meta if k != "train_config"}}

    @property
    def precision(self) -> str:
        """The precision the model predicts in (a key of :data:`ecpe.inference.PRECISIONS`)."""
        members = getattr(self.model, "models", None) or [self.model]
        dtype = getattr(members[0], "inference_dtype", None)
        return next(name for name, d in PRECISIONS.items() if d == dtype)

    # ---- input handling ----------------------------------------------------------------------------
    def _prepare(self, item: Any) -> Prepared:
        """One input -> :class:`Prepared`. Accepts raw text, {"text": ...}, {"clauses": [str, ...]}
        (pre-split) or {"clauses": [[word, ...], ...]} (pre-segmented); see :func:`check_document`."""
        kind = check_document(item, self.max_clauses)
        if kind == "text":
            texts, words = prepare_text(item if isinstance(item, str) else item["text"], self.segmenter)
            if len(texts) > self.max_clauses:
                raise InputError(f"document has {len(texts)} clauses; the limit is {self.max_clauses}",
                                 "too_many_clauses")
            return Prepared(texts, words)
        clauses = item["clauses"]
        if kind == "str":
            texts = list(clauses)
            words = [[] if is_blank(c) else segment(c, self.segmenter) for c in clauses]
        else:
            texts = ["".join(c) if self.segmenter.startswith("jieba") else " ".join(c) for c in clauses]
            words = [[w for w in c if w.strip()] for c in clauses]
        if all(words):
            return Prepared(texts, words)
        keep = [i for i, w in enumerate(words) if w]
        return Prepared(texts, [words[i] for i in keep], keep)

    # ---- extraction --------------------------------------------------------------------------------
    def extract(self, text: Any, threshold: float | None = None, matrix: bool = False) -> dict[str, Any]:
        """Pairs of one document; see :meth:`extract_many`."""
        return self.extract_many([text], threshold=threshold, matrix=matrix)[0]

    def extract_many(self, items: Sequence[Any], threshold: float | None = None, matrix: bool = False,
                     as_json: bool = False) -> list[Any]:
        """Extract pairs from several documents, batched by length.

        Returns one dict per input: ``clauses`` (strings), ``pairs`` (``emotion``, ``cause`` 0-based clause
        indices and ``score``), ``emotion_prob`` and ``cause_prob`` per clause; with ``matrix``, also
        ``pair_matrix`` (M-hat, rows = emotion clause, columns = cause clause). With ``as_json``, each
        result's JSON text instead, ``json.dumps(result, ensure_ascii=False)``, written from the arrays
        (what ``ecpe predict --input`` writes; about 3x faster than building the dicts and dumping them).
        """
        if len(items) <= self.chunk:
            return (self._run_json if as_json else self._run)([self._prepare(it) for it in items], threshold, matrix)

        def chunks():
            for s in range(0, len(items), self.chunk):
                yield [self._prepare(it) for it in items[s:s + self.chunk]]

        return list(self._pipelined(chunks(), threshold, matrix, as_json))

    def _pipelined(self, chunks: Iterable[Any], threshold: float | None = None, matrix: bool = False,
                   as_json: bool = False) -> Iterator[Any]:
        """Run the model over prepared chunks on one worker thread while the caller's thread prepares the
        next chunk (segmentation is Python, the model mostly native code), yielding results in order.
        A chunk that is an exception is raised after every earlier result has been yielded.
        Without a core to spare (see ``pipeline``), chunks are prepared and run in turn on this thread.
        With ``as_json``, the results are JSON text (see :meth:`extract_lines`)."""
        run = self._run_json if as_json else self._run
        pipeline = self.pipeline if self.pipeline is not None else (os.cpu_count() or 1) > torch.get_num_threads()
        if not pipeline:
            for chunk in chunks:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield from run(chunk, threshold, matrix)
            return

        pending = None
        with ThreadPoolExecutor(1, thread_name_prefix="ecpe-model") as pool:
            for chunk in chunks:
                if isinstance(chunk, BaseException):
                    if pending is not None:
                        yield from pending.result()
                        pending = None
                    raise chunk
                future = pool.submit(run, chunk, threshold, matrix)
                if pending is not None:
                    yield from pending.result()
                pending = future
            if pending is not None:
                yield from pending.result()

    def _predict(self, prepared: list[Prepared], threshold: float | None, matrix: bool):
        """The documents (inputs with words) of a prepared chunk, predicted as arrays."""
        where = [i for i, p in enumerate(prepared) if p.words]
        res = predict_chunk(self.model, [prepared[i].words for i in where], threshold=threshold, keep_matrix=matrix,
                            batch_size=self.batch_size)
        return res, [p.texts for p in prepared], where

    def _run(self, prepared: list[Prepared], threshold: float | None = None,
             matrix: bool = False) -> list[dict[str, Any]]:
        out = result_dicts(*self._predict(prepared, threshold, matrix), matrix=matrix)
        for j, p in enumerate(prepared):
            if p.keep is not None:
                out[j] = _expand(out[j], p.keep, len(p.texts))
        return out

    def _run_json(self, prepared: list[Prepared], threshold: float | None = None,
                  matrix: bool = False) -> list[str]:
        predicted = self._predict(prepared, threshold, matrix)
        out = result_json(*predicted, matrix=matrix)
        partial = [j for j, p in enumerate(prepared) if p.keep is not None]
        if partial:
            dicts = result_dicts(*predicted, matrix=matrix)
            for j in partial:
                out[j] = json.dumps(_expand(dicts[j], prepared[j].keep, len(prepared[j].texts)), ensure_ascii=False)
        return out

    def extract_lines(self, lines: Iterable[str], source: str = "<input>", chunk: int | None = None,
                      threshold: float | None = None, matrix: bool = False, as_json: bool = False) -> Iterable[Any]:
        """Parse JSON lines (or plain text lines) and yield one result per non-empty line, in order,
        running the model over chunks of lines while the next chunk is prepared. A bad line raises
        InputError naming the file and line, after the results of the lines before it. With ``as_json``
        each result is its JSON text, ``json.dumps(result, ensure_ascii=False)``, written from arrays."""
        size = chunk or self.chunk

        def chunks():
            buffer: list[Prepared] = []
            for lineno, line in enumerate(lines, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    item = json.loads(line) if line.startswith("{") else line
                    buffer.append(self._prepare(item))
                except json.JSONDecodeError as e:
                    error: Exception = InputError(f"{source}:{lineno}: invalid JSON ({e.msg} at column {e.colno})")
                except InputError as e:
                    error = InputError(f"{source}:{lineno}: {e}")
                else:
                    if len(buffer) >= size:
                        yield buffer
                        buffer = []
                    continue
                if buffer:
                    yield buffer  # results before the bad line are not lost
                yield error
                return
            if buffer:
                yield buffer

        yield from self._pipelined(chunks(), threshold, matrix, as_json)
