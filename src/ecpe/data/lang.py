"""The language of a corpus, read from its words, and the languages of the resources that suit only one.

The packaged corpora, vectors and lexicon (:mod:`ecpe.resources`) and the jieba segmenters are Chinese. A
corpus of another language (the English ECPE corpus of Singh et al. 2021 has the same NUSTM format) must not
be given them: its words are not in their vocabularies, so they add nothing but time. :func:`detect_language`
tells Chinese, English and "another language" apart from the characters and words of a corpus's documents.
"""
from __future__ import annotations

import re
from typing import Iterable

from ..errors import UsageError
from .corpus import Document

__all__ = ["CHINESE", "detect_language", "same_language", "is_chinese", "language_name", "check_language_code"]

CHINESE = "zh"
UNDETERMINED = "und"  # ISO 639-2: a language the detector does not name
NAMES = {"zh": "Chinese", "en": "English", UNDETERMINED: "neither Chinese nor English"}

# CJK unified ideographs (basic, extension A, compatibility, extensions B-F)
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_KANA = re.compile("[\u3040-\u30ff]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
# frequent English function words: a Latin-script corpus is English when enough of its tokens are these
_ENGLISH = frozenset("the a an of to and in is was were be been it that this for on with as at by from his her he "
                     "she i you we they my me not but have has had are".split())
_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
SAMPLE_CHARS = 200_000  # enough text to decide; the rest of a large corpus is not read


def detect_language(docs: Iterable[Document]) -> str:
    """``"zh"``, ``"en"`` or ``"und"`` for a corpus, from the words of its documents (up to about 200 k
    characters are read).

    Chinese: at least half of the letters are Han characters, and kana are rare (Japanese mixes both).
    English: at least half of the letters are Latin, and at least 5 % of the tokens are English function words.
    Anything else, and a corpus without letters, is ``"und"``.
    """
    text: list[str] = []
    size = 0
    tokens = english = 0
    for d in docs:
        for clause in d.clauses:
            for w in clause:
                text.append(w)
                size += len(w)
                tokens += 1
                english += w.lower() in _ENGLISH
        if size >= SAMPLE_CHARS:
            break
    joined = "".join(text)
    letters = sum(ch.isalpha() for ch in joined)
    if not letters:
        return UNDETERMINED
    han, kana, latin = (len(p.findall(joined)) for p in (_HAN, _KANA, _LATIN))
    if han >= 0.5 * letters and kana < 0.05 * letters:
        return CHINESE
    if latin >= 0.5 * letters and english >= 0.05 * tokens:
        return "en"
    return UNDETERMINED


def same_language(a: str, b: str) -> bool:
    """Whether two language codes name one language, whatever their subtags (``zh-TW`` and ``zh``)."""
    return a.split("-")[0].lower() == b.split("-")[0].lower()


def is_chinese(code: str) -> bool:
    """Whether a language code names Chinese (``zh``, ``zh-Hans``, ``zh-TW``, ...)."""
    return same_language(code, CHINESE)


def language_name(code: str) -> str:
    """A language code for a person: ``zh`` -> Chinese, ``en`` -> English, ``und`` -> neither ...; others as given."""
    return NAMES.get(code.split("-")[0].lower(), code) if code else "?"


def check_language_code(code: str) -> str:
    """A ``--lang`` value: a lowercase ISO 639 code, optionally with subtags (``en``, ``zh-Hant``); else ValueError."""
    if not _CODE.match(code):
        raise UsageError(f"expected a language code such as zh, en or fr (ISO 639), got {code!r}")
    return code
