"""Reading the files of ``ecpe transfer build`` (layer 1, so that training can read them): the transfer
documents (gzip JSON lines, one unlabelled document a line) and their teachers' soft targets (``.npz``).
How they are built: :mod:`ecpe.transfer` and docs/transfer.md."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .corpus import Document

__all__ = ["read_records", "read_transfer", "read_targets", "per_document"]


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a transfer file (gzip JSON lines as :func:`ecpe.transfer.build_fold` writes them, or
    plain JSON lines)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                ok = isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("clauses"), list) \
                    and r["clauses"] and all(isinstance(c, list) and c and all(isinstance(w, str) for w in c)
                                             for c in r["clauses"])
            except json.JSONDecodeError:
                ok = False
            if not ok:
                raise UsageError(f"{path}:{lineno}: expected a JSON object with an 'id' and 'clauses' (lists of words)")
            out.append(r)
    return out


def read_transfer(path: str | Path) -> list[Document]:
    """The documents of a transfer file, without pairs."""
    return [Document(r["id"], r["clauses"]) for r in read_records(path)]


def read_targets(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a soft-target file (``ids``, ``teachers``, ``doc_lens``, ``emotion``, ``cause``,
    ``matrix``; see :func:`ecpe.transfer.score_documents`), read without pickles."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def per_document(targets: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(M-hat [n, n], emotion [n], cause [n]) of each document of a soft-target file."""
    lens = targets["doc_lens"]
    c_off = np.cumsum(lens) - lens
    m_off = np.cumsum(lens ** 2) - lens ** 2
    return [(targets["matrix"][m:m + n * n].reshape(n, n), targets["emotion"][c:c + n], targets["cause"][c:c + n])
            for n, c, m in zip(lens.tolist(), c_off.tolist(), m_off.tolist())]
