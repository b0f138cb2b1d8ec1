"""One input line -> one output record: strict JSON, the checks of :func:`~ecpe.inference.check_document`, error
records in place of bad lines, and the numbered lines of a stream."""
from __future__ import annotations

import gzip
import json
import math
import zlib
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from ..errors import UsageError
from ..inference import LOCAL_LIMITS, InputError, Limits, check_document

ON_ERROR = ("record", "skip", "fail")
EXIT_OK, EXIT_ERRORS, EXIT_STOPPED, EXIT_CRASHED = 0, 1, 2, 3
GROUP = 1024              # lines handed to Extractor.extract_many at once (it pipelines them in its own chunks)


class BatchFailure(UsageError):
    """The job stopped: a bad line under ``on_error="fail"``, or a usage error (bad paths, missing extra)."""


class Output(NamedTuple):
    """The result of one input line: its JSON output line, the number of pairs, and the error (or None)."""

    line: int
    json: str
    pairs: int
    error: str | None


class Unreadable(NamedTuple):
    """Where a line should be, the reason the shard could not be read further (a truncated or false gzip
    file, an I/O error): it becomes one error record, and the job goes on with the next shard."""

    reason: str


class _NotJSON(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSON(f"number {text[:20]} is out of range")
    return value


def _strict_loads(line: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number beyond float range; raises ValueError with the
    reason. (A lone surrogate, ``\\ud800``, is valid JSON syntax but no Unicode text: the strings that are read
    are checked by :func:`check_document`, the id by :func:`parse_line`.)"""
    try:
        obj = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at column {e.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except _NotJSON as e:
        raise ValueError(str(e)) from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ValueError(str(e).split(";")[0]) from None
    return obj


def parse_line(raw: bytes | str | Unreadable, limits: Limits = LOCAL_LIMITS) -> tuple[Any, Any, str | None]:
    """One input line -> ``(item for Extractor, id or None, error or None)``.

    A line starting with ``{`` is a JSON object (``{"text": ...}``, ``{"clauses": [...]}``, with an optional
    ``"id"`` copied to the output); any other line is a raw text, as in ``ecpe predict --input``."""

    if isinstance(raw, Unreadable):
        return None, None, raw.reason
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return None, _id_of(raw.decode("utf-8", "replace")), f"invalid UTF-8 (byte {e.start})"
    else:
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as e:
            return None, None, f"invalid Unicode (a lone surrogate at character {e.start})"
    line = raw.strip()
    if not line.startswith("{"):
        item, doc_id = line, None
    else:
        try:
            item = _strict_loads(line)
        except ValueError as e:
            return None, None, f"invalid JSON ({e})"
        doc_id = item.get("id") if isinstance(item, dict) else None
        if doc_id is not None and "\\ud" in line.lower() and not _writable(doc_id):
            return None, None, "the id is not valid Unicode (a lone surrogate)"
    try:
        check_document(item, limits.max_clauses, limits.max_chars)
    except InputError as e:
        return None, doc_id, str(e)
    return item, doc_id, None


def _writable(value: Any) -> bool:
    try:
        _dumps(value).encode("utf-8")
    except (ValueError, RecursionError):
        return False
    return True


def _id_of(line: str) -> Any:
    """The id of a line that is JSON but not valid input, when there is one to report."""
    try:
        obj = _strict_loads(line)
    except ValueError:
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def _dumps(rec: dict) -> str:
    """Strict JSON text of an output record (ValueError or RecursionError when there is none)."""
    return json.dumps(rec, ensure_ascii=False, allow_nan=False)


def _error_json(line: int, doc_id: Any, error: str) -> str:
    rec = {"line": line, **({"id": doc_id} if doc_id is not None else {}), "error": error}
    try:
        return _dumps(rec)
    except (ValueError, RecursionError):  # an id that cannot be written back: the record goes without it
        return _dumps({"line": line, "error": error})


def extract_lines(extractor, lines: Sequence[tuple[int, bytes | str]], limits: Limits | None = None,
                  threshold: float | None = None, matrix: bool = False) -> list[Output]:
    """Numbered input lines -> one :class:`Output` per line, in order; a bad line gives an error record.

    Both engines call this on their groups of lines, so they give the same records. Good lines go to
    ``Extractor.extract_many`` together; should it still refuse one (an input this module's checks let
    through), the group is run again one document at a time so that only that line fails."""

    limits = limits or Limits(max_clauses=extractor.max_clauses)
    parsed = [parse_line(raw, limits) for _, raw in lines]
    good = [i for i, (_, _, err) in enumerate(parsed) if err is None]
    results: dict[int, str] = {}   # the JSON text of each good line's result
    errors = {i: err for i, (_, _, err) in enumerate(parsed) if err is not None}
    try:
        items = [parsed[i][0] for i in good]
        results.update(zip(good, extractor.extract_many(items, threshold=threshold, matrix=matrix, as_json=True)))
    except InputError:
        for i in good:
            try:
                results[i] = extractor.extract_many([parsed[i][0]], threshold=threshold, matrix=matrix, as_json=True)[0]
            except InputError as e:
                errors[i] = str(e)
    out = []
    for i, ((lineno, _), (_, doc_id, _)) in enumerate(zip(lines, parsed)):
        if i in results:
            try:
                text = _result_line(results[i], doc_id)
                # a pair is the only place where {"emotion":  stands outside a string (inside one, " is \")
                out.append(Output(lineno, text, text.count('{"emotion": '), None))
                continue
            except (ValueError, RecursionError) as e:
                errors[i] = f"the result cannot be written as JSON ({e.__class__.__name__}: {str(e)[:100]})"
        out.append(Output(lineno, _error_json(lineno, doc_id, errors[i]), 0, errors[i]))
    return out


def _result_line(text: str, doc_id: Any) -> str:
    """The output line of a result's JSON text (``Extractor.extract_many(..., as_json=True)``): the line's id
    first when it has one, as ``json.dumps({"id": doc_id, **result})`` writes it; ValueError for a result that
    is not strict JSON (NaN or Infinity, as ``allow_nan=False`` refuses them)."""
    if "NaN" in text or "Infinity" in text:  # rare (a clause may hold the word): checked the slow way
        text = _dumps(json.loads(text))
    return text if doc_id is None else '{"id": ' + _dumps(doc_id) + ", " + text[1:]


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the non-blank lines, numbered from 1 as in the file."""
    for lineno, raw in enumerate(stream, 1):
        if raw.strip():
            yield lineno, raw


def _read_fault(e: BaseException, last: int) -> str:
    where = f"after line {last}" if last else "from its start"
    if isinstance(e, gzip.BadGzipFile):
        why = f"not a gzip file ({e})"
    elif isinstance(e, EOFError):
        why = "truncated gzip file (it ends before its end-of-stream marker)"
    elif isinstance(e, zlib.error):
        why = f"corrupt gzip data ({e})"
    else:
        why = f"{e.strerror or e}" if isinstance(e, OSError) else str(e)
    return f"unreadable shard {where}: {why}"


def grouped(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    for it in items:
        group.append(it)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group
