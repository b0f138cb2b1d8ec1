"""Word vectors: word2vec files in text and binary format, word2vec trained on training documents only."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_corpus, write_split
from gensim.models import KeyedVectors

from ecpe.cli import main
from ecpe.data.vocab import Vocab
from ecpe.embeddings import embedding_matrix, read_word2vec, train_word2vec


@pytest.fixture
def vectors_file(tmp_path):
    def write(binary: bool, dim: int = 8, words=("高兴", "礼物", "今天")):
        kv = KeyedVectors(vector_size=dim)
        kv.add_vectors(list(words), np.arange(len(words) * dim, dtype=np.float32).reshape(len(words), dim) / 10)
        path = tmp_path / ("w2v.bin" if binary else "w2v.txt")
        kv.save_word2vec_format(str(path), binary=binary)
        return path
    return write


@pytest.mark.parametrize("binary", [False, True])
def test_read_word2vec_text_and_binary(vectors_file, binary):
    vecs, dim = read_word2vec(vectors_file(binary))
    assert dim == 8 and set(vecs) == {"高兴", "礼物", "今天"}
    np.testing.assert_allclose(vecs["礼物"], np.arange(8, 16) / 10, rtol=1e-6)


def test_read_word2vec_keeps_only_vocabulary_words(vectors_file):
    vecs, _ = read_word2vec(vectors_file(False), Vocab(["高兴"]))
    assert set(vecs) == {"高兴"}


def test_read_word2vec_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_word2vec(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not\na word2vec file\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt"):
        read_word2vec(bad)


def test_embedding_matrix_fills_known_words_and_zero_padding():
    vocab = Vocab(["a", "b"])
    mat, hits = embedding_matrix(vocab, {"b": np.ones(4, dtype=np.float32)}, 4)
    assert mat.shape == (4, 4) and hits == 1
    assert not mat[0].any()                      # padding
    np.testing.assert_array_equal(mat[3], np.ones(4))  # "b"
    assert np.abs(mat[2]).max() <= 0.1           # "a": small random
    # fewer dimensions: the vector, then zeros; more: an error
    mat, _ = embedding_matrix(vocab, {"b": np.full(3, 2.0, dtype=np.float32)}, 4)
    np.testing.assert_array_equal(mat[3], [2, 2, 2, 0])
    with pytest.raises(ValueError, match="dimensions"):
        embedding_matrix(vocab, {"b": np.ones(5, dtype=np.float32)}, 4)


def test_train_word2vec_is_cached_and_deterministic():
    sents = [d for doc in make_corpus(20, seed=1) for d in doc.clauses]
    a = train_word2vec(sents, dim=8, seed=3, epochs=2)
    b = train_word2vec(sents, dim=8, seed=3, epochs=2)          # from the cache
    c = train_word2vec(sents, dim=8, seed=3, epochs=2, use_cache=False)
    assert set(a) == {w for s in sents for w in s}
    for w in a:
        np.testing.assert_array_equal(a[w], b[w])
        np.testing.assert_allclose(a[w], c[w], rtol=1e-5, atol=1e-6)


def test_cli_train_with_embeddings_file(tmp_path, vectors_file):
    docs = make_corpus(24, seed=2)
    data = write_split(tmp_path / "split10", docs[:18], docs[18:])
    path = vectors_file(True)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(out), "--epochs", "1", "-q",
                 "--embeddings", str(path), "--embed-dim", "8", "--freeze-embeddings"]) == 0
    fold = json.loads((out / "fold1" / "result.json").read_text())
    assert fold["embeddings"]["source"] == str(path)
    assert 0 < fold["embeddings"]["coverage"] < 1
    # a file with more dimensions than --embed-dim is a clear error, not a traceback
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(tmp_path / "run2"), "--epochs", "1",
                 "-q", "--embeddings", str(path), "--embed-dim", "4"]) == 2
