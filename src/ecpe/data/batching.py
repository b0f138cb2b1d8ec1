"""Documents -> tensors, built once per split, and length-bucketed batches over them.

All clauses of a split live in one padded id matrix; a batch gathers its documents' clauses with one
index operation and trims the padding to the longest clause of the batch, so no Python loop runs over
words while training.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import UsageError
from .corpus import Document
from .layout import flat_layout
from .vocab import Vocab

__all__ = ["DocBatch", "DocTensors", "ChunkTensors", "lookup_ids", "char_id_matrix", "batch_to", "batch_spans",
           "MAX_BATCH_CELLS"]

# pair cells (documents x longest document squared) one prediction batch may hold. Predicting takes about 32
# bytes a cell with --preset best's model (one document of 2,000 clauses: +0.16 GB, 4,000: +0.49 GB; 32 documents
# of 500: +0.32 GB in one batch, +0.11 GB cut by this budget; measured 2026-12-04), so a batch of long documents
# is cut smaller than batch_size. NEWS documents (at most 73 clauses, 64 x 73^2 cells a batch) never are; one
# document always fits
MAX_BATCH_CELLS = 1 << 20


def batch_spans(sorted_lens: Sequence[int], batch_size: int, max_cells: int = MAX_BATCH_CELLS) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive batches over documents sorted by ascending length: at most ``batch_size``
    documents, and at most ``max_cells`` pair cells (documents x longest length squared) unless alone."""
    s, n = 0, len(sorted_lens)
    while s < n:
        e = s + 1
        while e < n and e - s < batch_size and (e - s + 1) * int(sorted_lens[e]) ** 2 <= max_cells:
            e += 1
        yield s, e
        s = e


def batch_to(batch, device: torch.device | str):
    """A batch dataclass with its tensor fields on ``device`` (the batch itself when they are there already).

    Batches are built on the CPU, where the data lives; a model on a GPU moves each one before its forward pass.
    """
    device = torch.device(device)
    moved = {f.name: v.to(device, non_blocking=True) for f in dataclasses.fields(batch)
             if isinstance(v := getattr(batch, f.name), torch.Tensor) and v.device != device}
    return dataclasses.replace(batch, **moved) if moved else batch


@dataclass
class DocBatch:
    """A batch of B documents with N clauses in all (D = longest document, L = longest clause)."""

    words: torch.Tensor        # [N, L] word ids, 0 = padding
    clause_lens: torch.Tensor  # [N]
    flat_words: torch.Tensor   # [T] the clauses end to end, each padded with zeros to min_clause_len
    clause_starts: torch.Tensor  # [N] where each clause starts in flat_words
    doc_lens: torch.Tensor     # [B]
    clause_pos: torch.Tensor   # [N] position of each clause in the flattened [B * D] grid
    mask: torch.Tensor         # [B, D] True on real clauses
    emotion: torch.Tensor      # [B, D] 0/1 gold emotion labels (0 on padding)
    cause: torch.Tensor        # [B, D] 0/1 gold cause labels
    pairs: torch.Tensor        # [B, D, D] 1 where (row emotion p, column cause q) is a gold pair
    index: list[int]           # positions of the documents in their DocTensors
    # char_backoff: word id len(vocab) + j stands for the j-th unknown word of the split, whose known
    # characters' ids are row j of this [n_unknown, K] matrix (0 = padding); None without backoff
    unknown_chars: torch.Tensor | None = None
    # distillation (DocTensors.set_soft_targets): [B, D] float emotion / cause targets in [0, 1]; the soft
    # pair targets replace ``pairs``. None: the gold 0/1 labels above
    emotion_target: torch.Tensor | None = None
    cause_target: torch.Tensor | None = None
    # the Trainer scales this batch's loss by it (student training: transfer batches; see training.student)
    loss_weight: float = 1.0

    def to(self, device: torch.device | str) -> "DocBatch":
        return batch_to(self, device)

    @property
    def batch_size(self) -> int:
        return len(self.doc_lens)

    @property
    def max_doc_len(self) -> int:
        return self.mask.shape[1]


def char_id_matrix(vocab: Vocab, words: Sequence[str]) -> torch.Tensor:
    """[len(words), K] ids of each word's characters that are vocabulary words (``Vocab.char_ids``),
    padded with 0; K >= 1."""
    rows = [vocab.char_ids(w) for w in words]
    width = max((len(r) for r in rows), default=1) or 1
    return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long).view(len(rows), width)


class DocTensors:
    """The tensors of one split, built once.

    Args:
        docs: documents (with or without gold pairs).
        vocab: word vocabulary; unknown words map to ``<unk>``.
        max_clause_len: words kept per clause (longer clauses are truncated).
        min_clause_len: clauses are padded to at least this many positions (the widest CNN kernel).
        char_backoff: an unknown word with characters that are vocabulary words gets its own id past the
            vocabulary (see ``DocBatch.unknown_chars``) instead of ``<unk>``.
    """

    def __init__(self, docs: Sequence[Document], vocab: Vocab, max_clause_len: int = 64, min_clause_len: int = 5,
                 char_backoff: bool = False):
        self.docs = list(docs)
        self.min_clause_len = min_clause_len
        self.unknown_chars: torch.Tensor | None = None
        encode = vocab.encode
        if char_backoff:
            unknown: dict[str, int] = {}  # unknown word with known characters -> its id past the vocabulary

            no_chars: set[str] = set()    # unknown words without known characters: <unk>

            def encode(words):
                ids = vocab.encode(words)
                if 1 not in ids:
                    return ids
                for k, i in enumerate(ids):
                    if i == 1 and (w := words[k]) not in no_chars and w not in vocab:
                        if w not in unknown:
                            if not vocab.char_ids(w):
                                no_chars.add(w)
                                continue
                            unknown[w] = len(vocab) + len(unknown)
                        ids[k] = unknown[w]
                return ids

        ids = [encode(c[:max_clause_len]) for d in self.docs for c in d.clauses]
        if char_backoff:
            self.unknown_chars = char_id_matrix(vocab, list(unknown))
        self.clause_lens = torch.tensor([len(x) for x in ids], dtype=torch.long)
        width = max([min_clause_len, *(len(x) for x in ids)])
        # one scatter of every word id into the [clauses, width] matrix
        real = torch.arange(width)[None, :] < self.clause_lens[:, None]
        self.words = torch.zeros(len(ids), width, dtype=torch.long)
        self.words[real] = torch.tensor([i for x in ids for i in x], dtype=torch.long)
        self.doc_lens = torch.tensor([len(d) for d in self.docs], dtype=torch.long)
        self.starts = torch.cumsum(self.doc_lens, 0) - self.doc_lens
        self.soft: tuple | None = None  # see set_soft_targets
        self.emotion = torch.zeros(len(ids), dtype=torch.long)
        self.cause = torch.zeros(len(ids), dtype=torch.long)
        for i, d in enumerate(self.docs):
            s = int(self.starts[i])
            for e, c in d.pairs:
                self.emotion[s + e] = 1
                self.cause[s + c] = 1
        # the gold pairs of every document end to end ([P] emotion and cause clauses), so that a batch
        # gathers its documents' pairs with index operations, as it gathers their clauses
        self.pair_counts = torch.tensor([len(d.pairs) for d in self.docs], dtype=torch.long)
        self.pair_starts = torch.cumsum(self.pair_counts, 0) - self.pair_counts
        flat_pairs = torch.tensor([p for d in self.docs for p in d.pairs], dtype=torch.long).view(-1, 2)
        self.pair_emotion, self.pair_cause = flat_pairs[:, 0].contiguous(), flat_pairs[:, 1].contiguous()

    def __len__(self) -> int:
        return len(self.docs)

    def batch(self, index: Sequence[int]) -> DocBatch:
        """Gather the documents at ``index`` into one batch (index operations only: no Python loop runs
        over the documents, their clauses or their pairs)."""
        index = list(index)
        idx = torch.tensor(index, dtype=torch.long)
        doc_lens = self.doc_lens[idx]
        B, D = len(index), int(doc_lens.max()) if index else 0
        # clause rows of the chosen documents, in document order (:func:`_ranges`), and each one's place in its document
        lens = doc_lens.numpy()
        rows = torch.from_numpy(_ranges(self.starts.numpy()[index], lens))
        within = torch.from_numpy(_ranges(np.zeros_like(lens), lens))
        clause_lens = self.clause_lens[rows]
        L = max(self.min_clause_len, int(clause_lens.max()) if len(rows) else 0)
        owner = torch.repeat_interleave(torch.arange(B), doc_lens)
        clause_pos = owner * D + within
        mask = torch.zeros(B * D, dtype=torch.bool)
        mask[clause_pos] = True
        emotion = torch.zeros(B * D, dtype=torch.long)
        cause = torch.zeros(B * D, dtype=torch.long)
        emotion[clause_pos] = self.emotion[rows]
        cause[clause_pos] = self.cause[rows]
        pairs = torch.zeros(B, D, D)
        words = self.words[rows, :L]
        starts, total = flat_layout(clause_lens, self.min_clause_len)
        real = torch.arange(L)[None, :] < clause_lens[:, None]
        flat = torch.zeros(total, dtype=torch.long)
        flat[(starts[:, None] + torch.arange(L)[None, :])[real]] = words[real]
        emotion_t = cause_t = None
        if self.soft is not None:  # mixed gold / teacher targets (distillation): every cell of each document
            soft_cells, cell_starts, soft_emotion, soft_cause = self.soft
            cells = lens * lens
            k = torch.from_numpy(_ranges(np.zeros_like(cells), cells))       # cell's place in its document
            n = torch.repeat_interleave(doc_lens, torch.from_numpy(cells))
            b = torch.repeat_interleave(torch.arange(B), torch.from_numpy(cells))
            pairs[b, k // n, k % n] = soft_cells[torch.from_numpy(_ranges(cell_starts.numpy()[index], cells))]
            emotion_t = torch.zeros(B * D)
            cause_t = torch.zeros(B * D)
            emotion_t[clause_pos] = soft_emotion[rows]
            cause_t[clause_pos] = soft_cause[rows]
            emotion_t, cause_t = emotion_t.view(B, D), cause_t.view(B, D)
        else:
            counts = self.pair_counts.numpy()[index]
            at = torch.from_numpy(_ranges(self.pair_starts.numpy()[index], counts))  # the documents' gold pairs
            b = torch.repeat_interleave(torch.arange(B), torch.from_numpy(counts))
            pairs[b, self.pair_emotion[at], self.pair_cause[at]] = 1.0
        return DocBatch(words, clause_lens, flat, starts, doc_lens, clause_pos, mask.view(B, D),
                        emotion.view(B, D), cause.view(B, D), pairs, index, self.unknown_chars, emotion_t, cause_t)

    def set_soft_targets(self, pairs: Sequence[torch.Tensor], emotion: torch.Tensor, cause: torch.Tensor,
                         weight: float) -> None:
        """Train on ``(1 - weight) * gold + weight * teacher`` targets (distillation): ``pairs`` one [n, n]
        teacher M-hat per document, ``emotion`` / ``cause`` [clauses] teacher probabilities in the order of
        the split's clauses."""
        if not 0.0 <= weight <= 1.0:
            raise UsageError(f"distillation weight must be in [0, 1], got {weight}")
        mixed = []
        for d, p in zip(self.docs, pairs):
            gold = torch.zeros(len(d), len(d))
            for e, c in d.pairs:
                gold[e, c] = 1.0
            mixed.append((1 - weight) * gold + weight * p.float())
        # every document's [n, n] cells end to end, and where each document's begin
        cells = torch.cat([m.reshape(-1) for m in mixed]) if mixed else torch.zeros(0)
        counts = self.doc_lens * self.doc_lens
        self.soft = (cells, torch.cumsum(counts, 0) - counts,
                     (1 - weight) * self.emotion.float() + weight * emotion.float(),
                     (1 - weight) * self.cause.float() + weight * cause.float())

    def length_batches(self, batch_size: int) -> Iterator[DocBatch]:
        """Batches for prediction: the documents sorted by length (a stable sort), cut by :func:`batch_spans`;
        ``batch.index`` says which documents."""
        order = sorted(range(len(self.docs)), key=lambda i: len(self.docs[i]))
        for s, e in batch_spans([len(self.docs[i]) for i in order], batch_size):
            yield self.batch(order[s:e])

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0, bucket: bool = True) -> Iterator[DocBatch]:
        """Yield batches. With ``shuffle``, documents of similar length are grouped (``bucket``) and the
        order of batches is random; without it, batches follow the documents' order."""
        order = list(range(len(self.docs)))
        if shuffle:
            rng = random.Random(seed)
            rng.shuffle(order)
            if bucket:
                # sort within windows of 50 batches: similar lengths share a batch, and the batches
                # of one epoch still differ from the next
                win = batch_size * 50
                lens = self.doc_lens.tolist()
                order = [i for s in range(0, len(order), win) for i in sorted(order[s:s + win], key=lens.__getitem__)]
            chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
            rng.shuffle(chunks)
        else:
            chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        for chunk in chunks:
            yield self.batch(chunk)


# ---- prediction: a chunk of documents as arrays ---------------------------------------------------
def lookup_ids(vocab: Vocab, words: Sequence[str], char_backoff: bool = False) -> tuple[np.ndarray, torch.Tensor | None]:
    """Word ids of ``words`` (a flat sequence) as an int64 array: one C-level dict lookup per word, no
    Python frame per word. Unknown words map to ``<unk>``; with ``char_backoff`` an unknown word with
    characters that are vocabulary words gets an id past the vocabulary instead, numbered in order of
    first occurrence (as :class:`DocTensors` numbers them), and the second value is their
    :func:`char_id_matrix` (None without backoff).
    """
    ids = np.fromiter(map(vocab.stoi.get, words, repeat(1)), dtype=np.int64, count=len(words))
    if not char_backoff:
        return ids, None
    unknown: dict[str, int] = {}  # unknown word -> its id past the vocabulary, or 1 without known characters
    composed: list[str] = []
    stoi, V = vocab.stoi, len(vocab)
    for k in np.flatnonzero(ids == 1).tolist():     # the few unknown positions only
        w = words[k]
        if w in stoi:                               # the word "<unk>" itself
            continue
        j = unknown.get(w)
        if j is None:
            j = 1
            if vocab.char_ids(w):
                j = V + len(composed)
                composed.append(w)
            unknown[w] = j
        ids[k] = j
    return ids, char_id_matrix(vocab, composed)


class ChunkTensors:
    """The documents of one prediction chunk as flat arrays, built with array operations only.

    The prediction counterpart of :class:`DocTensors` (which also holds gold labels and is built once
    per split): every word id of the chunk is looked up at once (:func:`lookup_ids`), the clauses are
    laid end to end once for the whole chunk, with the documents sorted by length, and each batch is a
    contiguous slice of that layout. ``length_batches(size)`` gives the same :class:`DocBatch` es (gold
    fields zero) as ``DocTensors(docs, ...).length_batches(size)``, and the ids are ``DocTensors``' ones, so
    the model computes the same scores.

    Args:
        docs: documents as clauses of words (no gold pairs).
        vocab, max_clause_len, min_clause_len, char_backoff: as for :class:`DocTensors`.
    """

    def __init__(self, docs: Sequence[Sequence[Sequence[str]]], vocab: Vocab, max_clause_len: int = 64,
                 min_clause_len: int = 5, char_backoff: bool = False):
        self.min_clause_len = min_clause_len
        self.doc_lens = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))          # [B]
        clauses = list(chain.from_iterable(docs))
        full_lens = np.fromiter(map(len, clauses), dtype=np.int64, count=len(clauses))       # [N]
        words = list(chain.from_iterable(clauses))
        if len(full_lens) and int(full_lens.max()) > max_clause_len:  # rare: drop the words past the limit
            keep = np.arange(len(words)) - np.repeat(np.cumsum(full_lens) - full_lens, full_lens) < max_clause_len
            words = [words[k] for k in np.flatnonzero(keep).tolist()]
        self.clause_lens = np.minimum(full_lens, max_clause_len)
        ids, self.unknown_chars = lookup_ids(vocab, words, char_backoff)
        # documents sorted by length (stable, as predict sorts them), clauses in that order
        self.order = np.argsort(self.doc_lens, kind="stable")                                 # [B]
        doc_starts = np.cumsum(self.doc_lens) - self.doc_lens
        sorted_lens = self.doc_lens[self.order]
        rows = _ranges(doc_starts[self.order], sorted_lens)                                  # clause rows, sorted docs
        word_starts = np.cumsum(self.clause_lens) - self.clause_lens
        lens = self.clause_lens[rows]
        # the flat layout of flat_layout(lens, min_clause_len), for the whole chunk
        spans = np.maximum(lens, min_clause_len)
        self._span_starts = np.cumsum(spans) - spans                                         # [N]
        self._flat = np.zeros(int(spans.sum()), dtype=np.int64)
        self._flat[_ranges(self._span_starts, lens)] = ids[_ranges(word_starts[rows], lens)]
        self._lens = lens
        self._sorted_lens = sorted_lens
        self._doc_clause_starts = np.cumsum(sorted_lens) - sorted_lens                        # in sorted clause order

    def __len__(self) -> int:
        return len(self.doc_lens)

    def length_batches(self, batch_size: int) -> Iterator[DocBatch]:
        """Batches of ``batch_size`` documents of similar length; ``batch.index`` says which documents."""
        for s, e in batch_spans(self._sorted_lens, batch_size):
            yield self._batch(s, e)

    def _batch(self, s: int, e: int) -> DocBatch:
        """The batch of the sorted documents s..e-1 (e > s): contiguous slices of the chunk's layout."""
        doc_lens = self._sorted_lens[s:e]
        B, D = e - s, int(doc_lens.max())
        cs = int(self._doc_clause_starts[s])
        ce = cs + int(doc_lens.sum())
        lens = self._lens[cs:ce]
        L = max(self.min_clause_len, int(lens.max()) if ce > cs else 0)
        fs = int(self._span_starts[cs]) if ce > cs else 0
        fe = int(self._span_starts[ce - 1] + max(lens[-1], self.min_clause_len)) if ce > cs else 0
        starts = self._span_starts[cs:ce] - fs
        flat = self._flat[fs:fe]
        # [N, L] ids: each clause's window of the flat layout, zeros past its length (as in DocTensors)
        window = np.minimum(starts[:, None] + np.arange(L)[None, :], max(fe - fs - 1, 0))
        words = np.where(np.arange(L)[None, :] < lens[:, None], flat[window], 0) if ce > cs \
            else np.zeros((0, L), dtype=np.int64)
        owner = np.repeat(np.arange(B), doc_lens)
        within = np.arange(ce - cs) - np.repeat(self._doc_clause_starts[s:e] - cs, doc_lens)
        mask = np.arange(D)[None, :] < doc_lens[:, None]
        t = torch.from_numpy
        return DocBatch(t(words), t(lens.copy()), t(flat.copy()), t(starts), t(doc_lens.copy()), t(owner * D + within),
                        t(mask), torch.zeros(B, D, dtype=torch.long), torch.zeros(B, D, dtype=torch.long),
                        torch.zeros(B, D, D), self.order[s:e].tolist(), self.unknown_chars)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, s + n)`` for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)
