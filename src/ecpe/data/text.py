"""Raw text -> clauses -> words, as done at prediction time.

The NEWS corpus was built by splitting documents at clause punctuation and dropping the punctuation, and
its words were segmented for Chinese. Raw text is prepared the same way: split at Chinese and ASCII
clause punctuation, segment each clause (jieba for Chinese, whitespace and punctuation otherwise), and
drop tokens made only of punctuation.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["split_clauses", "segment", "prepare_text", "SEGMENTERS"]

CLAUSE_PUNCT = "，。！？；：…,.!?;:"
_SPLIT = re.compile("[" + re.escape(CLAUSE_PUNCT) + "]+")
# a '.' or ',' between digits (3.5, 1,000) is part of a number, not a clause boundary
_NUMBER_SEP = re.compile(r"(?<=\d)[.,](?=\d)")
_NUMBER_MARK = "\uE000"  # private-use placeholder while splitting

SEGMENTERS = ("jieba", "whitespace")


def _is_punct(token: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PZ" or ch.isspace() for ch in token)


def split_clauses(text: str) -> list[str]:
    """Split raw text into clause strings at clause punctuation; empty clauses are dropped."""
    protected = _NUMBER_SEP.sub(lambda m: _NUMBER_MARK if m.group() == "." else "\uE001", text)
    out = []
    for piece in _SPLIT.split(protected):
        piece = piece.replace(_NUMBER_MARK, ".").replace("\uE001", ",").strip()
        if piece and not _is_punct(piece):
            out.append(piece)
    return out


_WS_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def segment(clause: str, segmenter: str = "jieba") -> list[str]:
    """Segment one clause into words; punctuation-only tokens are dropped."""
    if segmenter == "jieba":
        tokens = _get_jieba().lcut(clause)
    elif segmenter == "whitespace":
        tokens = _WS_TOKEN.findall(clause)
    else:
        raise ValueError(f"unknown segmenter {segmenter!r}; choose one of {SEGMENTERS}")
    return [t for t in (t.strip() for t in tokens) if t and not _is_punct(t)]


def prepare_text(text: str, segmenter: str = "jieba") -> tuple[list[str], list[list[str]]]:
    """Raw text -> (clause strings, clause word lists). Clauses that segment to nothing are dropped."""
    clauses, words = [], []
    for c in split_clauses(text):
        w = segment(c, segmenter)
        if w:
            clauses.append(c)
            words.append(w)
    return clauses, words
