"""Emotion lexicon features: which lexicon classes each word belongs to.

``dutir``: the seven emotion classes of the DUTIR emotion ontology (Xu et al. 2008: 乐 joy, 好 fondness,
怒 anger, 哀 sadness, 惧 fear, 恶 disgust, 惊 surprise) and the six word lists of HowNet's sentiment set
(positive, negative, negation, and the degree words "more", "very", "-ish"), both as shipped by the
``cntext`` package (``pip install 'ecpe[zh-resources]'``). A word gets one 0/1 indicator per class;
E2EECPE (``lexicon="dutir"``) gives each clause the maximum over its words, next to the clause CNN's
output. The per-word matrix is stored in the checkpoint, so prediction needs no package.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Sequence

import numpy as np

from .errors import UsageError
from .cache import cache_dir
from .data.vocab import Vocab
from .resources import INSTALL_HINT, MissingResource, normalize, package_file, package_version

__all__ = ["LEXICONS", "LEXICON_LANGUAGES", "lexicon_classes", "load_lexicon", "word_features"]

_DUTIR = ("乐", "好", "怒", "哀", "惧", "恶", "惊")
_HOWNET = ("pos", "neg", "deny", "more", "very", "ish")
LEXICONS = {"dutir": [f"dutir:{c}" for c in _DUTIR] + [f"hownet:{c}" for c in _HOWNET]}
LEXICON_LANGUAGES = {"dutir": "zh"}  # the language of each lexicon's words
_FILES = {"dutir": "io/data/zh_common_DUTIR.yaml", "hownet": "io/data/zh_common_HowNet.yaml"}


def lexicon_classes(name: str) -> list[str]:
    if name not in LEXICONS:
        raise UsageError(f"unknown lexicon {name!r}; choose from {', '.join(LEXICONS)}")
    return list(LEXICONS[name])


def _read_yaml_dictionary(part: str) -> dict[str, list[str]]:
    try:
        import yaml
    except ImportError:
        raise MissingResource(f"reading a lexicon needs PyYAML: {INSTALL_HINT}") from None
    path = package_file("cntext", _FILES[part])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=loader)  # a safe loader: plain data only
    return {str(k): [normalize(str(w)) for w in (v or [])] for k, v in data["Dictionary"].items()}


@lru_cache(maxsize=4)
def load_lexicon(name: str = "dutir") -> dict[str, tuple[int, ...]]:
    """word -> indices of its classes (see :data:`LEXICONS`); cached as JSON in the ecpe cache."""
    classes = lexicon_classes(name)
    path = cache_dir() / "lexicons" / f"{name}-cntext-{package_version('cntext')}.json"
    if path.exists():
        return {w: tuple(ix) for w, ix in json.loads(path.read_text(encoding="utf-8")).items()}
    index = {c: i for i, c in enumerate(classes)}
    table: dict[str, set[int]] = {}
    for part in ("dutir", "hownet"):
        for cls, words in _read_yaml_dictionary(part).items():
            i = index.get(f"{part}:{cls}")
            if i is None:
                continue
            for w in words:
                if w:
                    table.setdefault(w, set()).add(i)
    out = {w: tuple(sorted(ix)) for w, ix in table.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return out


def word_features(vocab: Vocab | Sequence[str], lexicon: dict[str, tuple[int, ...]], n_classes: int) -> np.ndarray:
    """[len(vocab), n_classes] 0/1 indicators of each vocabulary word's lexicon classes (padding and
    ``<unk>`` rows are 0)."""
    words = vocab.itos if isinstance(vocab, Vocab) else list(vocab)
    feats = np.zeros((len(words), n_classes), dtype=np.float32)
    for i, w in enumerate(words):
        if i < 2:
            continue
        for c in lexicon.get(w, ()):
            feats[i, c] = 1.0
    return feats
