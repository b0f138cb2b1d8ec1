"""Student training on teacher-labelled transfer documents (``ecpe train --transfer``; docs/student.md).

A fold's transfer documents (``ecpe transfer build``: unlabelled news built the way the corpus was, never
sharing a clause with the fold's dev or test documents) and their teachers' targets are read from a folder
(``foldK_transfer.jsonl.gz``, ``foldK_targets.npz``, as ``ecpe transfer build --out`` writes them). The
student trains on the gold training documents and on these, mixed batch by batch in every epoch:

- soft targets: the teachers' mean M-hat and emotion / cause probabilities as they are;
- hard pseudo-labels (``pseudo_threshold`` T, self-training): a pair cell or clause whose teacher probability
  is at least T becomes 1, every other 0; a document with no pair cell at T or above is dropped (the corpus
  has no document without a pair);
- ``transfer_docs`` N: a seeded subset (the first N of one seeded permutation per fold, so that smaller sets
  lie inside larger ones: a learning curve adds documents);
- ``transfer_weight`` W: a transfer clause weighs W times a gold clause (each transfer batch's per-clause loss
  is scaled by W x its clauses / the mean clauses of a gold batch); W = 0 or N = 0 trains no transfer document;
- noise: the model's word dropout (and dropout) apply to every training batch, transfer batches included, as
  in Noisy Student.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import UsageError
from ..config import TRANSFER_WEIGHT, TrainConfig
from ..data.batching import DocBatch, DocTensors
from ..data.corpus import Document, Fold
from ..data.unlabelled import per_document, read_records, read_targets

__all__ = ["TRANSFER_BATCH_SIZE", "TransferSet", "transfer_files", "load_transfer", "pseudo_labels", "MixedTensors",
           "mix_transfer", "transfer_active"]

TRANSFER_BATCH_SIZE = 128  # documents per transfer batch: 4x the gold batches, fewer steps over 10x the documents


def transfer_active(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` trains on transfer documents (a folder, and neither 0 documents nor weight 0)."""
    return bool(cfg.transfer) and cfg.transfer_docs != 0 and cfg.transfer_weight != 0


def transfer_files(folder: str | Path, k: int) -> tuple[Path, Path, Path]:
    """(documents, their facts, teachers' targets) of fold ``k`` in a transfer folder."""
    folder = Path(folder)
    return folder / f"fold{k}_transfer.jsonl.gz", folder / f"fold{k}_transfer.json", folder / f"fold{k}_targets.npz"


@dataclass
class TransferSet:
    """A fold's transfer documents and the targets the student trains on (one (M-hat, emotion, cause) each)."""

    docs: list[Document]
    targets: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    info: dict[str, Any]


def pseudo_labels(targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float
                  ) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Hard labels of soft targets: (indices of the documents kept, their 0/1 targets). A cell or clause at
    ``threshold`` or above is 1; a document without a pair cell at or above it is dropped."""
    kept, out = [], []
    for i, (m, e, c) in enumerate(targets):
        pairs = (m >= threshold).astype(np.float32)
        if not pairs.any():
            continue
        kept.append(i)
        out.append((pairs, (e >= threshold).astype(np.float32), (c >= threshold).astype(np.float32)))
    return kept, out


def load_transfer(cfg: TrainConfig, fold: Fold, dev_docs: Sequence[Document]) -> TransferSet:
    """Fold ``fold``'s transfer documents of ``cfg.transfer`` with their targets (soft, or hard with
    ``cfg.pseudo_threshold``), the seeded subset of ``cfg.transfer_docs``. Refuses a set built for another
    split, fold or dev share (its overlap drop protected other documents), and targets of other documents."""
    docs_path, facts_path, targets_path = transfer_files(cfg.transfer, fold.index)
    for p in (docs_path, targets_path):
        if not p.is_file():
            raise FileNotFoundError(f"--transfer {cfg.transfer}: no {p.name} (build it with `ecpe transfer build "
                                    f"--teacher RUN --out {cfg.transfer}`, or use --transfer auto)")
    if facts_path.is_file():
        about = json.loads(facts_path.read_text(encoding="utf-8")).get("about", {})
        if about.get("fold") not in (None, fold.index) or about.get("split") not in (None, fold.split):
            raise UsageError(f"--transfer {cfg.transfer}: {docs_path.name} was built for {about.get('split')} fold "
                             f"{about.get('fold')}, not {fold.split} fold {fold.index}")
        if about.get("dev_ids") is not None and sorted(about["dev_ids"]) != sorted(d.doc_id for d in dev_docs):
            raise UsageError(f"--transfer {cfg.transfer}: {docs_path.name} was built for another dev share (another "
                             "--seed or --dev-fraction): documents of this dev share may be in it")
    records = read_records(docs_path)
    arrays = read_targets(targets_path)
    ids = [r["id"] for r in records]
    if arrays["ids"].tolist() != ids:
        raise UsageError(f"--transfer {cfg.transfer}: {targets_path.name} labels other documents than {docs_path.name}")
    docs = [Document(r["id"], r["clauses"]) for r in records]
    targets = per_document(arrays)
    for d, (m, _, _) in zip(docs, targets):
        if m.shape != (len(d), len(d)):
            raise UsageError(f"--transfer {cfg.transfer}: {targets_path.name}: document {d.doc_id} has {len(d)} "
                             f"clauses but a {m.shape} M-hat")
    info: dict[str, Any] = {"folder": str(cfg.transfer), "available": len(docs),
                            "teachers": arrays["teachers"].tolist() if "teachers" in arrays else []}
    if cfg.pseudo_threshold is not None:
        kept, targets = pseudo_labels(targets, cfg.pseudo_threshold)
        docs = [docs[i] for i in kept]
        info.update(pseudo_threshold=cfg.pseudo_threshold, with_pseudo_pairs=len(docs),
                    dropped_without_pairs=info["available"] - len(docs))
        if not docs:
            raise UsageError(f"--pseudo-threshold {cfg.pseudo_threshold}: no transfer document of fold {fold.index} "
                             "has a pair cell at or above it (a lower threshold, or a better teacher)")
    order = list(range(len(docs)))
    random.Random(cfg.seed * 1000 + fold.index).shuffle(order)
    if cfg.transfer_docs is not None:
        if cfg.transfer_docs > len(docs):
            raise UsageError(f"--transfer-docs {cfg.transfer_docs}: fold {fold.index} has only {len(docs)} transfer "
                             "documents" + (" with a pair at --pseudo-threshold" if cfg.pseudo_threshold else ""))
        order = sorted(order[:cfg.transfer_docs])
    else:
        order.sort()
    info["used"] = len(order)
    return TransferSet([docs[i] for i in order], [targets[i] for i in order], info)


def set_transfer_targets(tensors: DocTensors, targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """The teachers' targets (soft or hard) as the training targets of ``tensors`` (weight 1: no gold)."""
    tensors.set_soft_targets([torch.from_numpy(np.ascontiguousarray(m)) for m, _, _ in targets],
                             torch.from_numpy(np.concatenate([e for _, e, _ in targets]) if targets else np.zeros(0)),
                             torch.from_numpy(np.concatenate([c for _, _, c in targets]) if targets else np.zeros(0)),
                             1.0)


def mix_transfer(model, gold: DocTensors, transfer: TransferSet, cfg: TrainConfig) -> MixedTensors:
    """``gold`` and ``transfer``'s documents, tensorized by ``model`` with the teachers' targets, in the epochs
    ``ecpe train --transfer`` runs: weight ``cfg.transfer_weight`` (default 1) and batches of
    ``cfg.transfer_batch_size`` (default :data:`TRANSFER_BATCH_SIZE`)."""
    tensors = model.tensorize(transfer.docs)
    set_transfer_targets(tensors, transfer.targets)
    weight = TRANSFER_WEIGHT if cfg.transfer_weight is None else cfg.transfer_weight
    return MixedTensors(gold, tensors, weight, cfg.transfer_batch_size or TRANSFER_BATCH_SIZE)


class MixedTensors:
    """Gold training batches and transfer batches in one epoch, in a seeded random order. Each transfer batch
    carries ``loss_weight`` = W x its clauses / the mean clauses of a gold batch, so that over an epoch a
    transfer clause weighs W times a gold clause. ``len()`` is the number of gold documents (the Trainer's
    progress bar counts gold batches)."""

    def __init__(self, gold: DocTensors, transfer: DocTensors, weight: float, transfer_batch_size: int):
        self.gold, self.transfer = gold, transfer
        self.weight, self.transfer_batch_size = weight, transfer_batch_size

    def __len__(self) -> int:
        return len(self.gold)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[DocBatch]:
        n_gold = (len(self.gold) + batch_size - 1) // batch_size
        n_transfer = (len(self.transfer) + self.transfer_batch_size - 1) // self.transfer_batch_size
        per_gold_batch = float(self.gold.doc_lens.sum()) / max(n_gold, 1)
        tags = [0] * n_gold + [1] * n_transfer
        if shuffle:
            random.Random(seed + 7919).shuffle(tags)
        gold = self.gold.batches(batch_size, shuffle=shuffle, seed=seed)
        transfer = self.transfer.batches(self.transfer_batch_size, shuffle=shuffle, seed=seed + 1)
        for tag in tags:
            if tag == 0:
                yield next(gold)
            else:
                b = next(transfer)
                b.loss_weight = self.weight * float(b.doc_lens.sum()) / per_gold_batch
                yield b
