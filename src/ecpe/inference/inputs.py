"""What a document may be, checked once for every way in (the Python API, ``ecpe predict``, batch jobs).

A document is a raw text (``str`` or ``{"text": str}``), a pre-split one (``{"clauses": [str, ...]}``) or a
pre-segmented one (``{"clauses": [[word, ...], ...]}``). :func:`check_document` raises :class:`InputError`
naming what is wrong: the shape, a string that is not valid Unicode (a lone surrogate, which no UTF-8 output
can hold), or a size over a limit. Sizes are counted cheaply: the clauses of a raw text by splitting only,
which never gives fewer than the model would see.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..data.text import split_clauses

__all__ = ["InputError", "MAX_CLAUSES", "check_document", "check_max_clauses", "check_text", "is_blank"]

# the most clauses a document may ever hold, whatever limit is asked for: the pair matrix grows with the square
# of a document's clauses (about 32 bytes a cell when predicting: 5,000 clauses take about 0.8 GB)
MAX_CLAUSES = 5000


class InputError(ValueError):
    """An input the extractor cannot take; the message says what was expected."""


def check_max_clauses(n: int, what: str = "max_clauses") -> int:
    """``n`` when it is a clause limit in 1..:data:`MAX_CLAUSES`, else ValueError naming ``what``."""
    if not 1 <= n <= MAX_CLAUSES:
        raise ValueError(f"{what} must be 1..{MAX_CLAUSES}, got {n} (a document's pair matrix grows with the "
                         f"square of its clauses)")
    return n


def check_text(s: str, field: str = "text") -> None:
    """InputError when ``s`` holds a lone surrogate (from an escape such as ``\\ud800`` in JSON, or bytes
    that were not UTF-8 in a command line): such a string has no UTF-8 form."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{field} is not valid Unicode: a lone surrogate \\u{ord(s[e.start]):04x} at "
                         f"character {e.start}") from None


def is_blank(clause: str | list[str]) -> bool:
    """A clause with nothing to read: empty, or only white space."""
    return not clause.strip() if isinstance(clause, str) else not any(w.strip() for w in clause)


def _clause_kind(clauses: Any) -> str | None:
    """"str" (clause strings), "words" (word lists), or None when ``clauses`` is neither."""
    if not isinstance(clauses, list):
        return None
    if all(isinstance(c, str) for c in clauses):
        return "str"
    if all(isinstance(c, list) and all(isinstance(w, str) for w in c) for c in clauses):
        return "words"
    return None


def _strings(kind: str, clauses: list) -> Iterable[tuple[int, str]]:
    if kind == "str":
        yield from enumerate(clauses)
    else:
        for i, c in enumerate(clauses):
            for w in c:
                yield i, w


def check_document(item: Any, max_clauses: int | None = None, max_chars: int | None = None) -> str:
    """Check one document; returns its kind: "text" (raw text, bare or in an object), "str" (clause strings)
    or "words" (word lists). Raises :class:`InputError` naming what is wrong."""
    if isinstance(item, dict) and "clauses" in item:
        clauses = item["clauses"]
        kind = _clause_kind(clauses)
        if kind is None:
            raise InputError("'clauses' must be a list of strings or a list of word lists")
        if max_clauses is not None and len(clauses) > max_clauses:
            raise InputError(f"document has {len(clauses)} clauses; the limit is {max_clauses}")
        n_chars = 0
        for i, s in _strings(kind, clauses):
            check_text(s, f"clause {i}")
            n_chars += len(s)
        if max_chars is not None and n_chars > max_chars:
            raise InputError(f"document has {n_chars} characters; the limit is {max_chars}")
        return kind
    if isinstance(item, str):
        text = item
    elif isinstance(item, dict) and "text" in item:
        text = item["text"]
        if not isinstance(text, str):
            raise InputError("'text' must be a string")
    elif isinstance(item, dict):
        raise InputError("an input object needs a 'text' or a 'clauses' field")
    else:
        raise InputError(f"expected text or an object with 'text' or 'clauses', got {type(item).__name__}")
    check_text(text)
    if max_chars is not None and len(text) > max_chars:
        raise InputError(f"document has {len(text)} characters; the limit is {max_chars}")
    if max_clauses is not None and len(text) > max_clauses:  # a shorter text cannot have more clauses
        n = len(split_clauses(text))
        if n > max_clauses:
            raise InputError(f"document has {n} clauses; the limit is {max_clauses}")
    return "text"
