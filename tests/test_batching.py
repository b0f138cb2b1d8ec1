"""Training batches (``DocTensors.batch``): built with index operations, they must hold exactly what the
documents say, clause by clause and pair by pair."""
from __future__ import annotations

import random

import torch
from helpers import make_corpus

from ecpe.data.batching import DocTensors
from ecpe.data.corpus import Document
from ecpe.data.vocab import Vocab


def _docs() -> list[Document]:
    docs = make_corpus(24, seed=5, min_len=2, max_len=9)
    # several pairs in one document, a pair on the diagonal, and a one-clause document without pairs
    docs[3] = Document(docs[3].doc_id, docs[3].clauses, [(0, 0), *docs[3].pairs])
    docs[5] = Document(docs[5].doc_id, docs[5].clauses[:1], [])  # one clause, no pair
    return docs


def _reference(t: DocTensors, docs: list[Document], index: list[int], soft=None) -> dict[str, torch.Tensor]:
    """What a batch of ``index`` must hold, document by document in Python."""
    B, D = len(index), max(len(docs[i]) for i in index)
    mask, emotion, cause = torch.zeros(B, D, dtype=torch.bool), torch.zeros(B, D, dtype=torch.long), torch.zeros(B, D, dtype=torch.long)
    pairs = torch.zeros(B, D, D)
    rows = []
    for b, i in enumerate(index):
        n, s = len(docs[i]), int(t.starts[i])
        mask[b, :n] = True
        rows += range(s, s + n)
        for e, c in docs[i].pairs:
            emotion[b, e] = cause[b, c] = 1
            pairs[b, e, c] = 1.0
        if soft is not None:
            pairs[b, :n, :n] = soft[i]
    return {"mask": mask, "emotion": emotion, "cause": cause, "pairs": pairs, "rows": torch.tensor(rows)}


def test_batches_hold_their_documents_clauses_and_pairs():
    docs = _docs()
    t = DocTensors(docs, Vocab.build(c for d in docs for c in d.clauses))
    rng = random.Random(0)
    for index in ([3], [5], [5, 3], list(range(len(docs))), *(rng.sample(range(len(docs)), 7) for _ in range(5))):
        b, ref = t.batch(index), _reference(t, docs, index)
        assert torch.equal(b.mask, ref["mask"]) and torch.equal(b.pairs, ref["pairs"])
        assert torch.equal(b.emotion, ref["emotion"]) and torch.equal(b.cause, ref["cause"])
        assert torch.equal(b.clause_lens, t.clause_lens[ref["rows"]])
        assert torch.equal(b.words, t.words[ref["rows"], :b.words.shape[1]])
        assert torch.equal(b.clause_pos, ref["mask"].reshape(-1).nonzero().squeeze(1))
        assert b.index == index and b.emotion_target is None


def test_soft_target_batches_hold_every_cell_of_their_documents():
    docs = _docs()
    t = DocTensors(docs, Vocab.build(c for d in docs for c in d.clauses))
    gen = torch.Generator().manual_seed(1)
    teacher = [torch.rand(len(d), len(d), generator=gen) for d in docs]
    n = sum(len(d) for d in docs)
    emo, cau = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    t.set_soft_targets(teacher, emo, cau, 0.75)
    gold = [torch.zeros(len(d), len(d)).index_put_(tuple(torch.tensor(d.pairs, dtype=torch.long).view(-1, 2).t()),
                                                   torch.tensor(1.0)) for d in docs]
    mixed = [0.25 * g + 0.75 * p for g, p in zip(gold, teacher)]
    for index in ([5], [3, 0], [7, 2, 11, 5, 19]):
        b, ref = t.batch(index), _reference(t, docs, index, soft=mixed)
        assert torch.equal(b.pairs, ref["pairs"])
        want_e = torch.zeros_like(b.emotion_target)
        want_e[ref["mask"]] = (0.25 * t.emotion.float() + 0.75 * emo)[ref["rows"]]
        assert torch.equal(b.emotion_target, want_e)
