"""The contract every model of the package implements, and what its checkpoint stores.

A model is an ``nn.Module`` subclass of :class:`ECPEModel`, built as ``cls(vocab, config, embeddings)``:

- ``tensorize(docs)`` -> the tensors of a split, built once (``DocTensors`` or a subclass), whose
  ``batches(...)`` / ``batch(index)`` / ``length_batches(size)`` give the batches the other methods read;
- ``chunk_tensors(docs)`` -> the tensors of documents to predict, given as clauses of words; only their
  ``length_batches(size)`` is read (default: ``tensorize`` of unlabelled documents; E2EECPE builds a
  :class:`~ecpe.data.batching.ChunkTensors` with array operations only);
- ``forward(batch)`` -> scores (a dict of tensors);
- ``loss(scores, batch)`` -> a scalar tensor, the training objective of one batch;
- ``decode(scores, batch, threshold=None)`` -> :class:`Decoded`, predictions as **tensors** (conversion to
  Python lists and JSON happens at the edge, :func:`ecpe.inference.to_predictions`);
- ``param_groups(l2)`` -> optimizer groups (a group flagged ``sparse`` gets a lazy Adam);
- ``schedule``: the name of the training schedule that drives it, a key of ``ecpe.training.SCHEDULES``
  (``"single"``: one Trainer over the whole model; ``"two-stage"``: stage 1, then candidate pairs, then stage 2);
- ``select_key``: the number the single-stage schedule maximises on the selection set (pair F1);
- ``averageable``: whether :class:`ecpe.inference.Ensemble` may average it with others;
- ``prepare_for_inference()``: inference-only speed-ups (no change of results beyond float rounding).

Models never import :mod:`ecpe.training` or :mod:`ecpe.inference`: they are driven by them.

A checkpoint (:func:`ecpe.models.save_model`) is one file of plain data, loadable with
``torch.load(path, weights_only=True)``::

    {"format": "ecpe-checkpoint/1",      # CHECKPOINT_FORMAT
     "config_version": 3,                # CONFIG_VERSION; absent = 1 (see ecpe.models.migrate_config)
     "model": "e2eecpe",                 # registry name (ecpe.models.MODELS)
     "config": {...},                    # the model's config dataclass as a dict (tuples as lists)
     "vocab": {...},                     # Vocab.state_dict()
     "preprocess": {"segmenter": ...},   # how raw text is prepared at prediction, as in training
     "state_dict": {...},                # the weights, on the CPU
     "versions": {"ecpe", "torch", "python"},
     "meta": {...}}                      # protocol, split, fold, scores, train_config, best_epoch
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from ..data.batching import ChunkTensors, DocBatch, DocTensors
from ..data.corpus import Document
from ..data.vocab import Vocab

__all__ = ["ECPEModel", "Decoded", "pair_f1"]



def pair_f1(metrics: dict) -> float:
    """The default selection key: pair F1."""
    return metrics["pair"]["f1"]


pair_f1.label = "pair F1"  # type: ignore[attr-defined]  # named in the per-epoch line


@dataclass
class Decoded:
    """Predictions of a batch of B documents (D = longest document), as tensors.

    ``pairs`` are in row-major order of (document, emotion clause, cause clause). ``pair_prob`` holds the
    score the model gives every (emotion, cause) cell: E2EECPE's M-hat = sigmoid(M) * A; for a two-stage
    model the filter's keep probability of each candidate (1 without the filter) and 0 for non-candidates.
    ``emotion_prob`` / ``cause_prob`` are None for a model without clause classifiers (E2EECPE w/o aux),
    whose emotions and causes are then the clauses of its predicted pairs.
    """

    doc_lens: torch.Tensor                # [B]
    pairs: torch.Tensor                   # [K, 3] long: (document in the batch, emotion clause, cause clause)
    pair_scores: torch.Tensor             # [K]
    emotions: torch.Tensor                # [B, D] bool: predicted emotion clauses
    causes: torch.Tensor                  # [B, D] bool: predicted cause clauses
    emotion_prob: torch.Tensor | None     # [B, D]
    cause_prob: torch.Tensor | None       # [B, D]
    pair_prob: torch.Tensor               # [B, D, D]

    @property
    def batch_size(self) -> int:
        return len(self.doc_lens)


class ECPEModel(nn.Module, ABC):
    """Base class of every model (see the module docstring for the contract).

    Args:
        vocab: word vocabulary (index 0 = padding).
        config: the model's config dataclass (``config_class``); its defaults when None.
        embeddings: optional [len(vocab), embed_dim] initial word vectors.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    schedule: ClassVar[str] = "single"
    select_key: ClassVar[Callable[[dict], float]] = staticmethod(pair_f1)
    # the dtype ecpe.inference runs forward in under autocast (None: float32); see ecpe.inference.set_precision
    inference_dtype: torch.dtype | None = None

    def __init__(self, vocab: Vocab, config: Any = None, embeddings: np.ndarray | None = None):
        super().__init__()
        self.vocab = vocab
        self.config = config if config is not None else self.config_class()

    @abstractmethod
    def tensorize(self, docs: Sequence[Document]) -> DocTensors:
        """The tensors of a split, built once."""

    def chunk_tensors(self, docs: Sequence[Sequence[Sequence[str]]]) -> DocTensors | ChunkTensors:
        """The tensors of documents to predict (each a list of clauses, each a list of words), read through
        ``length_batches(batch_size)``: batches of documents of similar length, ``batch.index`` saying which.
        Same batches as ``tensorize`` of the documents without gold pairs, which is the default."""
        return self.tensorize([Document(str(i), [list(c) for c in d]) for i, d in enumerate(docs)])

    @abstractmethod
    def forward(self, batch: DocBatch) -> dict[str, torch.Tensor]:
        """Scores of a batch."""

    @abstractmethod
    def loss(self, scores: dict[str, torch.Tensor], batch: DocBatch) -> torch.Tensor:
        """The scalar training loss of a batch."""

    @abstractmethod
    def decode(self, scores: dict[str, torch.Tensor], batch: DocBatch, threshold: float | None = None) -> Decoded:
        """Predictions from scores; ``threshold`` overrides the model's pair threshold."""

    @abstractmethod
    def param_groups(self, l2: float) -> list[dict]:
        """Optimizer parameter groups with their weight decay (``sparse``: a lazy Adam)."""

    @property
    def averageable(self) -> bool:
        """Whether an ensemble may average this model's probabilities with others'."""
        return False

    def prepare_for_inference(self) -> "ECPEModel":
        """Turn on inference-only speed-ups (none by default). Returns the model."""
        return self


def add_pair_clauses(emotions: torch.Tensor, causes: torch.Tensor, pairs: torch.Tensor) -> None:
    """Mark, in place, the emotion and cause clause of each pair ([K, 3] rows (document, emotion, cause)) in the
    [B, D] boolean ``emotions`` and ``causes`` (``clauses="heads+pairs"``)."""
    emotions[pairs[:, 0], pairs[:, 1]] = True
    causes[pairs[:, 0], pairs[:, 2]] = True
