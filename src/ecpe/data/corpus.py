"""Documents in the NUSTM/ECPE format (Xia & Ding, 2019) and the split folders built from them.

One document is written as::

    <doc_id> <n_clauses>
     (e1, c1), (e2, c2)             # 1-based (emotion clause, cause clause) pairs
    1,<category|null>,<keyword|null>,<space-separated words>
    ...                             # n_clauses lines

Only the pair line is read as supervision; the category and keyword fields are never given to a model.
Indices inside :class:`Document` are **0-based**.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UsageError

__all__ = ["Document", "DataFormatError", "read_documents", "parse_documents", "write_documents", "raw_records",
           "load_fold", "find_folds", "Fold"]


class DataFormatError(UsageError):
    """A malformed data file: the message names the file, the line and what was expected."""

    def __init__(self, path: str | Path, line: int, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class Document:
    """A document split into clauses of words, with its gold (emotion, cause) pairs (0-based)."""

    doc_id: str
    clauses: list[list[str]]
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clauses)

    @property
    def emotions(self) -> set[int]:
        return {e for e, _ in self.pairs}

    @property
    def causes(self) -> set[int]:
        return {c for _, c in self.pairs}


_PAIR = re.compile(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
_PAIR_LINE = re.compile(r"^\s*\[?\s*\(\s*-?\d+\s*,\s*-?\d+\s*\)(\s*,\s*\(\s*-?\d+\s*,\s*-?\d+\s*\))*\s*,?\s*\]?\s*$")


def _parse_pairs(text: str, n: int, path: str | Path, lineno: int) -> list[tuple[int, int]]:
    if not _PAIR_LINE.match(text):
        raise DataFormatError(path, lineno, f"expected a pair line like ' (7,9), (7,8)', got {text.strip()[:60]!r}")
    pairs: list[tuple[int, int]] = []
    for m in _PAIR.finditer(text):
        e, c = int(m.group(1)), int(m.group(2))
        for name, k in (("emotion", e), ("cause", c)):
            if not 1 <= k <= n:
                raise DataFormatError(path, lineno, f"pair ({e},{c}): {name} clause {k} is outside the document's 1..{n} clauses")
        if (e - 1, c - 1) not in pairs:  # the corpus lists some pairs twice; duplicates collapse
            pairs.append((e - 1, c - 1))
    return pairs


def parse_documents(lines: Iterable[str], path: str | Path = "<string>") -> Iterator[Document]:
    """Parse documents from an iterable of lines; ``path`` only serves error messages."""
    it = iter(enumerate(lines, start=1))
    for lineno, line in it:
        if not line.strip():
            continue
        head = line.split()
        if len(head) != 2 or not head[1].isdigit():
            raise DataFormatError(path, lineno, f"expected a header '<doc_id> <n_clauses>', got {line.strip()[:60]!r}")
        doc_id, n = head[0], int(head[1])
        if n < 1:
            raise DataFormatError(path, lineno, f"document {doc_id} declares {n} clauses; expected at least 1")
        try:
            lineno, pair_line = next(it)
        except StopIteration:
            raise DataFormatError(path, lineno + 1, f"document {doc_id}: expected a pair line, got end of file") from None
        pairs = _parse_pairs(pair_line, n, path, lineno)
        clauses = []
        for k in range(1, n + 1):
            try:
                lineno, line = next(it)
            except StopIteration:
                raise DataFormatError(path, lineno + 1, f"document {doc_id}: expected clause {k} of {n}, got end of file") from None
            fields = line.rstrip("\r\n").split(",")
            if len(fields) < 4 or fields[0].strip() != str(k):
                raise DataFormatError(path, lineno, f"document {doc_id}: expected clause line '{k},<category>,<keyword>,<words>', "
                                                    f"got {line.strip()[:60]!r}")
            clauses.append(fields[-1].split())
        yield Document(doc_id, clauses, pairs)


def read_documents(path: str | Path) -> list[Document]:
    """Read every document of a NUSTM-format file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return list(parse_documents(f, path))
    except UnicodeDecodeError as e:
        line, reason = _undecodable_line(path)
        raise DataFormatError(path, line, f"not UTF-8 text ({reason or e.reason})") from None


def raw_records(path: str | Path) -> Iterator[tuple[str, str, list[list[str]]]]:
    """``(doc_id, pair line, the comma-separated fields of each clause line)`` of a NUSTM file as written, for what a
    :class:`Document` does not keep (pairs listed twice, the category and keyword fields). The file is assumed
    well-formed: read it with :func:`read_documents` first."""
    with open(path, encoding="utf-8-sig") as f:
        lines = iter(f)
        for line in lines:
            head = line.split()
            if not head:
                continue
            pair_line = next(lines)
            yield head[0], pair_line, [next(lines).rstrip("\r\n").split(",") for _ in range(int(head[1]))]


def _undecodable_line(path: Path) -> tuple[int, str | None]:
    """The 1-based line of the first byte of ``path`` that is not UTF-8 (e.g. a file cut inside a
    multi-byte character), and why."""
    raw = path.read_bytes()
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        return body.count(b"\n", 0, e.start) + 1, e.reason
    return 1, None


def write_documents(docs: Iterable[Document], path: str | Path) -> None:
    """Write documents in the NUSTM format (category and keyword fields from the pairs)."""
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(f"{d.doc_id} {len(d)}\n")
            f.write(" " + ", ".join(f"({e + 1},{c + 1})" for e, c in d.pairs) + "\n")
            for k, words in enumerate(d.clauses):
                tag = "emotion" if k in d.emotions else "null"
                f.write(f"{k + 1},{tag},null,{' '.join(words)}\n")


@dataclass
class Fold:
    """One fold of a split: train, optional dev, and test documents."""

    split: str
    index: int
    train: list[Document]
    test: list[Document]
    dev: list[Document] | None = None


_FOLD_FILE = re.compile(r"^fold(\d+)_(train|test|valid|val|dev)\.txt$")


def find_folds(split_dir: str | Path) -> list[int]:
    """The fold numbers present in a split folder, sorted."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"split folder not found: {split_dir}")
    found = {int(m.group(1)) for p in split_dir.iterdir() if (m := _FOLD_FILE.match(p.name)) and m.group(2) == "train"}
    if not found:
        raise FileNotFoundError(f"no foldK_train.txt files in {split_dir}")
    return sorted(found)


def load_fold(split_dir: str | Path, k: int) -> Fold:
    """Read fold ``k`` of a split folder (``foldK_train``, ``foldK_test``, and ``foldK_valid`` or ``_val`` if present)."""
    split_dir = Path(split_dir)
    train = split_dir / f"fold{k}_train.txt"
    test = split_dir / f"fold{k}_test.txt"
    for p in (train, test):
        if not p.exists():
            raise FileNotFoundError(f"missing fold file: {p}")
    dev = None
    for name in ("valid", "val", "dev"):
        p = split_dir / f"fold{k}_{name}.txt"
        if p.exists():
            dev = read_documents(p)
            break
    return Fold(split_dir.name, k, read_documents(train), read_documents(test), dev)
