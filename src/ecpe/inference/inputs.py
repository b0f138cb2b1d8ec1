"""What a document may be, checked in one place for every way in: the Python API (``Extractor``), ``ecpe
predict`` (texts and ``--input`` lines) and ``ecpe serve`` (``POST /extract``).

A document is a raw text (``str`` or ``{"text": str}``), a pre-split one (``{"clauses": [str, ...]}``) or a
pre-segmented one (``{"clauses": [[word, ...], ...]}``). :func:`check_document` raises :class:`InputError`
naming what is wrong, in this order: the shape, a string that is not valid Unicode (a lone surrogate, which
no UTF-8 output can hold), more characters than a :class:`Limits` allows, more clauses. Sizes are counted
cheaply: the characters of every string the model reads; the clauses of a raw text by splitting only, which
never gives fewer than the model would see.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import UsageError
from ..data.text import split_clauses

__all__ = ["InputError", "Limits", "LOCAL_LIMITS", "SERVER_LIMITS", "MAX_CLAUSES", "CLAUSES_SHAPE", "check_document",
           "check_max_clauses", "check_text", "clause_kind", "is_blank", "lone_surrogate"]

# the most clauses a document may ever hold, whatever limit is asked for: the pair matrix grows with the square
# of a document's clauses (about 32 bytes a cell when predicting: 5,000 clauses take about 0.8 GB)
MAX_CLAUSES = 5000

CLAUSES_SHAPE = "'clauses' must be a list of strings (clauses) or a list of lists of strings (segmented clauses)"


class InputError(UsageError):
    """An input the extractor cannot take; the message says what was expected, ``code`` what kind of fault
    it is (``document_type``, ``clauses_type``, ``invalid_unicode``, ``too_many_characters``,
    ``too_many_clauses``; the ``type`` of an HTTP 422 error)."""

    def __init__(self, message: str, code: str = "invalid_document"):
        super().__init__(message)
        self.code = code


def check_max_clauses(n: int, what: str = "max_clauses") -> int:
    """``n`` when it is a clause limit in 1..:data:`MAX_CLAUSES`, else ValueError naming ``what``."""
    if not 1 <= n <= MAX_CLAUSES:
        raise UsageError(f"{what} must be 1..{MAX_CLAUSES}, got {n} (a document's pair matrix grows with the "
                         f"square of its clauses)")
    return n


@dataclass(frozen=True)
class Limits:
    """What one document may hold: at most ``max_clauses`` clauses (1..:data:`MAX_CLAUSES`) and
    ``max_chars`` characters; checked when made (ValueError naming the field as its flag, ``max-clauses``).

    Two named instances, because a local job and a server bound different risks:

    - :data:`LOCAL_LIMITS` (the defaults: 2,000 clauses, 100,000 characters): ``ecpe predict`` and batch jobs
      (``--max-clauses`` / ``--max-chars``), the ``Extractor``. The documents are the caller's own; the limit
      only keeps one huge line from taking the memory of a whole job (2,000 clauses: about 0.16 GB).
    - :data:`SERVER_LIMITS` (200 clauses, 20,000 characters): ``ecpe serve``. Requests come from others
      and share one model thread, so one document may hold the model for everyone no longer than a few
      milliseconds; NEWS documents have at most 73 clauses.
    """

    max_clauses: int = 2000
    max_chars: int = 100_000

    def __post_init__(self):
        check_max_clauses(self.max_clauses, "max-clauses")
        if self.max_chars < 1:
            raise UsageError(f"max-chars must be positive, got {self.max_chars}")

    def check(self, item: Any) -> str:
        """:func:`check_document` under these limits; returns the document's kind."""
        return check_document(item, self.max_clauses, self.max_chars)


LOCAL_LIMITS = Limits()
SERVER_LIMITS = Limits(max_clauses=200, max_chars=20_000)


def lone_surrogate(s: str) -> str | None:
    """Why ``s`` has no UTF-8 form ("a lone surrogate \\ud800 at character 3"), or None when it has one. Such a
    string comes from an escape such as ``\\ud800`` in JSON, or from bytes that were not UTF-8 in a command line."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"a lone surrogate \\u{ord(s[e.start]):04x} at character {e.start}"
    return None


def check_text(s: str, field: str = "text") -> None:
    """InputError naming ``field`` when ``s`` is not valid Unicode (:func:`lone_surrogate`)."""
    problem = lone_surrogate(s)
    if problem:
        raise InputError(f"{field} is not valid Unicode: {problem}", "invalid_unicode")


def is_blank(clause: str | list[str]) -> bool:
    """A clause with nothing to read: empty, or only white space."""
    return not clause.strip() if isinstance(clause, str) else not any(w.strip() for w in clause)


def clause_kind(clauses: Any) -> str | None:
    """"str" (clause strings), "words" (word lists), or None when ``clauses`` is neither (:data:`CLAUSES_SHAPE`)."""
    if not isinstance(clauses, list):
        return None
    if all(isinstance(c, str) for c in clauses):
        return "str"
    if all(isinstance(c, list) and all(isinstance(w, str) for w in c) for c in clauses):
        return "words"
    return None


def _strings(clauses: list) -> Iterable[tuple[int, str]]:
    """(clause index, string) of every string the model reads in a checked clause list."""
    for i, c in enumerate(clauses):
        if isinstance(c, str):
            yield i, c
        else:
            for w in c:
                yield i, w


def _text_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and "text" in item:
        if not isinstance(item["text"], str):
            raise InputError("'text' must be a string", "document_type")
        return item["text"]
    if isinstance(item, dict):
        raise InputError("an input object needs a 'text' or a 'clauses' field", "document_type")
    raise InputError(f"expected text or an object with 'text' or 'clauses', got {type(item).__name__}",
                     "document_type")


def check_document(item: Any, max_clauses: int | None = None, max_chars: int | None = None) -> str:
    """Check one document; returns its kind: "text" (raw text, bare or in an object), "str" (clause strings)
    or "words" (word lists). Raises :class:`InputError` naming what is wrong (see the module docstring)."""
    if isinstance(item, dict) and "clauses" in item:
        clauses = item["clauses"]
        kind = clause_kind(clauses)
        if kind is None:
            raise InputError(CLAUSES_SHAPE, "clauses_type")
        n_chars = 0
        for i, s in _strings(clauses):
            check_text(s, f"clause {i}")
            n_chars += len(s)
        n_clauses = len(clauses)
    else:
        kind, text = "text", _text_of(item)
        check_text(text)
        n_chars = len(text)
        # a text shorter than the limit cannot have more clauses: split only longer ones
        n_clauses = len(split_clauses(text)) if max_clauses is not None and n_chars > max_clauses else 0
    if max_chars is not None and n_chars > max_chars:
        raise InputError(f"document has {n_chars} characters; the limit is {max_chars}", "too_many_characters")
    if max_clauses is not None and n_clauses > max_clauses:
        raise InputError(f"document has {n_clauses} clauses; the limit is {max_clauses}", "too_many_clauses")
    return kind
