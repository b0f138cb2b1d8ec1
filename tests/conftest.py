"""Shared fixtures: tiny model settings and a tiny synthetic corpus (made by ``helpers.py``, which tests import).

The tests run on a small shared CPU, so every model here is tiny and every corpus a few dozen short
documents.
"""
from __future__ import annotations

import pytest
import torch
from helpers import TINY, make_corpus, write_split

from ecpe.data.corpus import Document

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """word2vec vectors are cached under $ECPE_CACHE: keep the tests' cache out of the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ECPE_CACHE", str(tmp_path_factory.mktemp("ecpe-cache")))
    yield
    mp.undo()


@pytest.fixture
def tiny_config() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def corpus() -> list[Document]:
    return make_corpus(40, seed=0)


@pytest.fixture(scope="session")
def make_docs():
    """The corpus generator, for tests that need their own documents."""
    return make_corpus


@pytest.fixture(scope="session")
def split_writer():
    """Write documents as a NUSTM split folder: ``split_writer(dir, train, test, fold=1)``."""
    return write_split
