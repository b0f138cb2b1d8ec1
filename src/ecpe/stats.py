"""Corpus statistics: the figures of Table 1 of Song et al. (2020), computed from the data.

``ecpe stats --data DIR_OR_FILE [--json]`` prints them, for the NEWS corpus beside the paper's printed figures.

The corpus lists 20 pairs twice (e.g. document 1070: ``(10,9), (10,9)``); :func:`ecpe.data.corpus.read_documents`
collapses them. The paper counted pairs **as listed**: its pair count (2,167), its offset distribution
(511 / 1,342 / 224 / 90) and its mean offset (0.9977) are exactly those of the listed pairs, and so are the real
numbers of documents with one pair (1,746) and with several (199). Counted once each, the corpus has 2,147 pairs,
1,765 documents with one pair and 180 with several. Both counts are reported.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from .data.corpus import _PAIR, Document, raw_records, read_documents
from .options import CLIError, resolve_data

__all__ = ["dataset_stats", "read_listed_pairs", "file_stats", "is_news", "PAPER_TABLE1", "add_subcommand"]

# Table 1 of Song et al. (2020), as printed.
PAPER_TABLE1 = {
    "documents": 2105, "clauses_per_doc": 14, "pairs": 2167, "docs_with_1_pair": 1746, "docs_with_more_pairs": 421,
    "offset_0": 511, "offset_1": 1342, "offset_2": 224, "offset_gt2": 90, "max_offset": 12, "mean_offset": 0.9977,
}

# the published NEWS corpus (all_data_pair.txt): documents, clauses, pairs as listed
NEWS_FIGURES = (1945, 28727, 2167)

REAL_DATA_NOTE = ("note: the paper's Table 1 prints 2,105 documents and 421 documents with more than one pair; the "
                  "published data (all_data_pair.txt) has 1,945 documents and 199 multi-pair documents.")


def _figures(n_clauses: Sequence[int], pairs: Sequence[Sequence[tuple[int, int]]]) -> dict:
    n_docs = len(n_clauses)
    offsets = [abs(c - e) for ps in pairs for e, c in ps]
    n_pairs = len(offsets)
    return {
        "documents": n_docs,
        "clauses": sum(n_clauses),
        "clauses_per_doc": sum(n_clauses) / n_docs if n_docs else 0.0,
        "pairs": n_pairs,
        "docs_without_pairs": sum(1 for ps in pairs if not ps),
        "docs_with_1_pair": sum(1 for ps in pairs if len(ps) == 1),
        "docs_with_more_pairs": sum(1 for ps in pairs if len(ps) > 1),
        "offset_0": sum(1 for o in offsets if o == 0),
        "offset_1": sum(1 for o in offsets if o == 1),
        "offset_2": sum(1 for o in offsets if o == 2),
        "offset_gt2": sum(1 for o in offsets if o > 2),
        "max_offset": max(offsets, default=0),
        "mean_offset": sum(offsets) / n_pairs if n_pairs else 0.0,
    }


def dataset_stats(docs: Iterable[Document], listed: Sequence[Sequence[tuple[int, int]]] | None = None) -> dict:
    """Table 1 figures of documents (their pairs 0-based and deduplicated, as the reader gives them).

    Keys: ``documents``, ``clauses``, ``clauses_per_doc`` (mean), ``pairs``, ``docs_without_pairs``,
    ``docs_with_1_pair``, ``docs_with_more_pairs``, ``offset_0``, ``offset_1``, ``offset_2``, ``offset_gt2``
    (pairs by absolute relative offset |cause − emotion|), ``max_offset`` and ``mean_offset`` (mean absolute offset).

    ``listed``, when given, holds each document's pairs as listed in the file, duplicates kept (see
    :func:`read_listed_pairs`); the same figures over them are then added under the key ``"listed"``.
    """
    docs = list(docs)
    n_clauses = [len(d) for d in docs]
    out = _figures(n_clauses, [d.pairs for d in docs])
    if listed is not None:
        if len(listed) != len(docs):
            raise ValueError(f"listed pairs given for {len(listed)} documents, expected {len(docs)}")
        out["listed"] = _figures(n_clauses, listed)
    return out


def read_listed_pairs(path: str | Path) -> list[list[tuple[int, int]]]:
    """Each document's pairs (0-based) exactly as listed in a NUSTM file, duplicates kept, in file order.

    Validate the file with :func:`ecpe.data.corpus.read_documents` first: this only walks its structure.
    """
    return [[(int(e) - 1, int(c) - 1) for e, c in _PAIR.findall(pairs)] for _, pairs, _ in raw_records(path)]


def file_stats(path: str | Path) -> dict:
    """:func:`dataset_stats` of a NUSTM file, with the figures over listed pairs under ``"listed"``."""
    docs = read_documents(path)
    return dataset_stats(docs, read_listed_pairs(path))


# ---- the `ecpe stats` command ---------------------------------------------------------------------
_ROWS = [
    ("documents", "documents", "d"),
    ("clauses", "clauses", "d"),
    ("clauses_per_doc", "clauses per document (mean)", ".2f"),
    ("pairs", "pairs", "d"),
    ("docs_with_1_pair", "documents with 1 pair", "d"),
    ("docs_with_more_pairs", "documents with >1 pairs", "d"),
    ("docs_without_pairs", "documents without pairs", "d"),
    ("offset_0", "pairs with offset 0", "d"),
    ("offset_1", "pairs with offset 1", "d"),
    ("offset_2", "pairs with offset 2", "d"),
    ("offset_gt2", "pairs with offset >2", "d"),
    ("max_offset", "maximum offset", "d"),
    ("mean_offset", "mean offset", ".4f"),
]


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    return format(value, fmt) if fmt != "d" else f"{value:,}"


def is_news(stats: dict) -> bool:
    """Whether the figures are those of the published NEWS corpus (the one the paper's Table 1 describes)."""
    listed = stats.get("listed") or stats
    return (stats["documents"], stats["clauses"], listed["pairs"]) == NEWS_FIGURES


def format_table(stats: dict, source: str = "", paper: bool | None = None) -> str:
    """The figures as a text table: the paper's Table 1 (``paper``; default: only for the NEWS corpus), ours
    over listed pairs (if known), ours over unique pairs."""
    listed = stats.get("listed")
    paper = is_news(stats) if paper is None else paper
    cols = (["paper"] if paper else []) + (["listed"] if listed else []) + ["unique"]
    lines = [f"Table 1 figures{' of ' + source if source else ''} (offset = |cause clause - emotion clause|)"]
    lines.append(f"  {'':30s}" + "".join(f"{c:>10s}" for c in cols))
    for key, label, fmt in _ROWS:
        ours = ([listed[key]] if listed else []) + [stats[key]]
        paper_fmt = "d" if key == "clauses_per_doc" else fmt  # the paper prints 14
        cells = ([_cell(PAPER_TABLE1.get(key), paper_fmt)] if paper else []) + [_cell(v, fmt) for v in ours]
        lines.append(f"  {label:30s}" + "".join(f"{c:>10s}" for c in cells))
    if listed:
        count = " (the paper's count)" if paper else ""
        lines.append(f"  listed: pairs as written in the file{count}; unique: duplicate pairs collapsed "
                     f"({listed['pairs'] - stats['pairs']} duplicates).")
    if paper:
        lines.append("  " + REAL_DATA_NOTE)
    return "\n".join(lines)


def _data_file(path: Path) -> Path:
    if path.is_file():
        return path
    f = path / "all_data_pair.txt"
    if f.is_file():
        return f
    raise CLIError(f"{path} holds no all_data_pair.txt; give the dataset folder or a NUSTM-format file")


def cmd_stats(args) -> int:
    path = _data_file(resolve_data(args.data))
    stats = file_stats(path)
    if args.json:
        paper = {"paper": PAPER_TABLE1} if is_news(stats) else {}
        print(json.dumps({"file": str(path), **stats, **paper}, ensure_ascii=False))
    else:
        print(format_table(stats, str(path)))
    return 0


def add_subcommand(sub) -> None:
    """Register ``ecpe stats`` on the subparsers object of the ``ecpe`` command."""
    s = sub.add_parser("stats", help="corpus statistics: the figures of the paper's Table 1, computed from the data",
                       description="Documents, clauses per document, pairs, documents with 1 and with >1 pairs, "
                                   "pairs by relative offset |cause - emotion| (0 / 1 / 2 / >2), maximum and mean "
                                   "offset; for the NEWS corpus, beside the figures printed in Table 1 of Song et al. (2020).")
    s.add_argument("--data", help="dataset folder (holding all_data_pair.txt) or a NUSTM-format file; "
                                  "default $ECPE_DATA, else a downloaded copy in the user cache")
    s.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of a table")
    s.set_defaults(func=cmd_stats)
