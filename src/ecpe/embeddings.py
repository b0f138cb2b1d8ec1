"""Word vectors: read a word2vec file (text or binary), or train word2vec (gensim) on training documents.

The paper's Weibo vectors (``w2v_200.txt``) are not distributed with the data; users who have them pass
the file, everyone else gets vectors trained on the fold's training documents only (never on test).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .cache import cache_dir
from .data.vocab import Vocab

__all__ = ["read_word2vec", "train_word2vec", "embedding_matrix", "cache_dir"]

log = logging.getLogger(__name__)


def read_word2vec(path: str | Path, vocab: Vocab | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Read a word2vec file in text or binary format; returns ({word: vector}, dim).

    With ``vocab``, only words of the vocabulary are kept (a large file then costs little memory).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"word vectors not found: {path}")
    from gensim.models import KeyedVectors

    with open(path, "rb") as f:
        head = f.read(4096)
    binary = b"\0" in head or not _looks_like_text(head)
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, unicode_errors="ignore")
    except Exception as e:  # gensim raises several types for a malformed file
        raise ValueError(f"{path}: not a word2vec {'binary' if binary else 'text'} file ({e})") from None
    keep = kv.index_to_key if vocab is None else [w for w in kv.index_to_key if w in vocab]
    return {w: np.asarray(kv[w], dtype=np.float32) for w in keep}, int(kv.vector_size)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:  # a cut multi-byte character at the end of the chunk is fine
        return e.start > len(head) - 4


def train_word2vec(sentences: Sequence[Sequence[str]], dim: int = 200, seed: int = 1, epochs: int = 10,
                   window: int = 5, min_count: int = 1, use_cache: bool = True) -> dict[str, np.ndarray]:
    """Train skip-gram word2vec on ``sentences`` (clauses of the training documents) with gensim.

    Results are cached under :func:`cache_dir` keyed by the sentences and settings.
    """
    key = hashlib.sha1(repr((dim, seed, epochs, window, min_count)).encode())
    for s in sentences:
        key.update(" ".join(s).encode("utf-8") + b"\n")
    path = cache_dir() / "w2v" / f"{key.hexdigest()}.npz"
    if use_cache and path.exists():
        data = np.load(path, allow_pickle=False)
        return dict(zip(data["words"].tolist(), data["vectors"]))
    from gensim.models import Word2Vec

    model = Word2Vec(sentences=[list(s) for s in sentences], vector_size=dim, window=window, min_count=min_count,
                     sg=1, workers=1, seed=seed, epochs=epochs)
    words = list(model.wv.index_to_key)
    vectors = np.asarray(model.wv.vectors, dtype=np.float32)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, words=np.array(words), vectors=vectors)
        os.replace(tmp, path)
    return dict(zip(words, vectors))


def embedding_matrix(vocab: Vocab, vectors: dict[str, np.ndarray], dim: int, seed: int = 1) -> tuple[np.ndarray, int]:
    """A [len(vocab), dim] matrix: known words get their vector, others U(-0.1, 0.1), padding zeros.

    Returns the matrix and the number of vocabulary words found in ``vectors``.
    """
    rng = np.random.default_rng(seed)
    mat = rng.uniform(-0.1, 0.1, size=(len(vocab), dim)).astype(np.float32)
    mat[0] = 0.0
    hits = 0
    for i, w in enumerate(vocab.itos):
        v = vectors.get(w)
        if v is not None and i > 0:
            if v.shape[0] != dim:
                raise ValueError(f"word vector for {w!r} has {v.shape[0]} dimensions, expected {dim}")
            mat[i] = v
            hits += 1
    return mat, hits
