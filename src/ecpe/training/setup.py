"""What a fold trains with, from its training documents only: the dev share, the word vectors, the vocabulary
and the initial embeddings, and the lexicon features."""
from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from ..config import TrainConfig
from ..data.corpus import Document, Fold
from ..data.vocab import Vocab
from ..embeddings import (PART_DIM, SOURCES, concat_vectors, corpus_word2vec, embedding_matrix, read_word2vec, source_parts,
                          train_word2vec)
from ..lexicon import lexicon_classes, load_lexicon, word_features
from ..resources import load_vectors


def carve_dev(docs: Sequence[Document], fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """Split training documents into (train, dev) with a seeded random ``fraction`` held out."""
    idx = list(range(len(docs)))
    random.Random(seed).shuffle(idx)
    n_dev = max(1, round(len(docs) * fraction)) if len(docs) > 1 else 0
    dev_ids = set(idx[:n_dev])
    return [d for i, d in enumerate(docs) if i not in dev_ids], [d for i, d in enumerate(docs) if i in dev_ids]


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed of everything random in one fold's training (torch, the dev share): ``seed * 1000 + fold index``."""
    return seed * 1000 + fold.index


def dev_split(fold: Fold, seed: int, fraction: float) -> tuple[list[Document], list[Document], str]:
    """(training documents, dev documents, where dev came from) of a fold as ``ecpe train`` selects on it: the
    fold's valid file (split20), else the seeded ``fraction`` of its training documents (:func:`carve_dev`).
    Benchmarks call it to rebuild a run's dev documents."""
    if fold.dev is not None:
        return list(fold.train), list(fold.dev), "valid file"
    train, dev = carve_dev(fold.train, fraction, fold_seed(seed, fold))
    return train, dev, f"seeded {fraction:.0%} of the training documents"


def word_vectors(cfg: TrainConfig, train_docs: Sequence[Document], fold_train: Sequence[Document], dim: int,
                 progress: bool = False) -> tuple[dict, dict[str, Any]]:
    """The fold's word vectors and where they came from (see :data:`ecpe.embeddings.SOURCES`; sources
    joined by ``+`` are concatenated per word, :func:`ecpe.embeddings.concat_vectors`).

    ``train_docs``: the documents the model trains on; ``fold_train``: the fold's whole training file
    (dev share included), which the ``corpus`` source adds to the packaged corpora. Never the test file.
    """
    source = cfg.embeddings or "train"
    parts = source_parts(source)
    found = [_source_vectors(p, cfg, train_docs, fold_train, dim if len(parts) == 1 else PART_DIM,
                             progress)
             for p in parts]
    if len(parts) == 1:
        vectors, info = found[0]
    else:
        vectors = concat_vectors([v for v, _ in found])
        info = {"source": source, "parts": [i for _, i in found], "vectors_dim": len(next(iter(vectors.values()))),
                "vocabulary": len(vectors)}
    vdim = len(next(iter(vectors.values()))) if vectors else dim
    if vdim > dim:
        raise UsageError(f"{source}: vectors have {vdim} dimensions but the model uses {dim}; pass --embed-dim {vdim}")
    return vectors, info


def _source_vectors(source: str, cfg: TrainConfig, train_docs: Sequence[Document], fold_train: Sequence[Document],
                    dim: int, progress: bool) -> tuple[dict, dict[str, Any]]:
    """One source of :func:`word_vectors` (word2vec sources train ``dim``-d vectors)."""
    info: dict[str, Any] = {"source": source}
    if source == "train":
        sentences = [c for d in train_docs for c in d.clauses]
        vectors = train_word2vec(sentences, dim=dim, seed=cfg.seed, epochs=cfg.w2v_epochs)
        info["source"] = "word2vec trained on the training documents"
    elif source == "corpus":
        # one worker: deterministic, so every run (any --jobs) shares the cached vectors of a fold
        vectors, facts = corpus_word2vec([c for d in fold_train for c in d.clauses], dim=dim,
                                         epochs=cfg.corpus_w2v_epochs, min_count=cfg.corpus_min_count,
                                         window=cfg.corpus_window, workers=1, progress=progress)
        info.update(facts, source="corpus: word2vec on packaged corpora + the fold's training file")
    elif source in SOURCES:
        words, matrix = load_vectors(source)
        vectors = dict(zip(words, matrix))
        info.update(vectors_dim=int(matrix.shape[1]), vocabulary=len(words))
    else:
        vectors, file_dim = read_word2vec(source)
        info.update(vectors_dim=file_dim, vocabulary=len(vectors))
    return vectors, info


def build_vocab(train_docs: Sequence[Document], cfg: TrainConfig, vectors: dict | None = None) -> Vocab:
    """The training documents' words (``cfg.min_freq``), then, with ``cfg.open_vocab``, words of the
    vectors that training never saw (in the vectors' order: most frequent first for word2vec)."""
    vocab = Vocab.build((c for d in train_docs for c in d.clauses), cfg.min_freq)
    if cfg.open_vocab and vectors:
        limit = None if cfg.open_vocab < 0 else cfg.open_vocab
        vocab.extend((w for w in vectors if w not in vocab), limit)
    return vocab


def build_embeddings(vocab: Vocab, dim: int, cfg: TrainConfig, vectors: dict, info: dict):
    """Initial word vectors (from :func:`word_vectors`): the matrix for ``vocab`` and facts about it
    (``info`` plus coverage of the training words and how many words came from the vectors only)."""
    matrix, hits = embedding_matrix(vocab, vectors, dim, seed=cfg.seed)
    n_train = sum(1 for c in vocab.counts if c > 0) if vocab.counts else len(vocab) - 2
    trained_hits = sum(1 for w in vocab.itos[2:2 + n_train] if w in vectors)
    return matrix, {**info, "coverage": trained_hits / max(n_train, 1),
                    "vocab_from_vectors": len(vocab) - 2 - n_train}


def lexicon_features(vocab: Vocab, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The per-word class indicators of lexicon ``name`` for ``vocab`` (``--lexicon``), and facts about them."""
    lexicon = load_lexicon(name)
    features = word_features(vocab, lexicon, len(lexicon_classes(name)))
    return features, {"name": name, "words": len(lexicon), "vocab_words_in_lexicon": int((features.sum(1) > 0).sum())}
