"""``ecpe compare``: runs side by side, each against a baseline by a paired t-test over folds.

A run is a ``results.json`` written by ``ecpe train`` (or its folder), or an ensemble's JSON
(``ensemble.json`` of ``ecpe train --seeds``). Only folds present in both a run and the baseline enter the
test; the protocols must match. The table names the protocol, split and folds.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import UsageError
from .significance import paired_difference

__all__ = ["load_run", "summarize_run", "paired_over_folds", "compare", "markdown", "add_subcommand"]

TASKS = ("pair", "emotion", "cause")


def load_run(path: str | Path, name: str | None = None) -> dict[str, Any]:
    """{name, protocol, split, folds, per_fold: {fold: metrics}, minutes, facts} of a run or ensemble file."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("results.json", "ensemble.json"):
            if (path / candidate).exists():
                path = path / candidate
                break
    if not path.exists():
        raise FileNotFoundError(f"no results.json or ensemble.json at {path}")
    data = json.loads(path.read_text())
    return summarize_run(data, name or str(path.parent if path.name in ("results.json", "ensemble.json") else path),
                         str(path))


def summarize_run(data: dict[str, Any], name: str, file: str = "") -> dict[str, Any]:
    """:func:`load_run`'s summary of results already read: ``ecpe train``'s results.json, an ensemble's JSON or
    ``ecpe reproduce``'s results.json (its E2EECPE summary)."""
    if "summaries" in data:  # an `ecpe reproduce` results.json: its E2EECPE summary
        data = data["summaries"]["e2eecpe"]
    run: dict[str, Any] = {"name": name, "file": file, "split": data.get("split", "?")}
    if "runs" in data and "member_protocol" in data:  # an ensemble
        run["protocol"] = data["member_protocol"]
        run["per_fold"] = {f["fold"]: f["ensemble"] for f in data["per_fold"]}
        run["kind"] = f"ensemble of {len(data['runs'])}"
        run["minutes"] = None
        run["facts"] = {}
    else:
        run["protocol"] = data.get("protocol", "?")
        run["per_fold"] = {f["fold"]: {t: f[t] for t in TASKS} for f in data["per_fold"]}
        run["kind"] = data.get("model", "?")
        walls = [f.get("wall_seconds") for f in data["per_fold"]]
        run["minutes"] = sum(walls) / 60 if all(w is not None for w in walls) else None
        if data.get("candidates_fold_minutes") is not None:  # ecpe choose: what every candidate's training took
            run["minutes"] = data["candidates_fold_minutes"]
        first = data["per_fold"][0].get("embeddings", {}) if data["per_fold"] else {}
        run["facts"] = {k: first[k] for k in ("source", "corpus_tokens", "vocabulary", "vocab_from_vectors", "lexicon")
                        if k in first}
        covs = [f.get("embeddings", {}).get("coverage") for f in data["per_fold"]]
        if all(c is not None for c in covs) and covs:
            run["facts"]["coverage_of_training_words"] = statistics.fmean(covs)
        run["config"] = data.get("config")
    return run


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def paired_over_folds(a: dict[int, dict], b: dict[int, dict]) -> dict[str, Any]:
    """F1 of ``a`` against ``b`` (``per_fold`` of :func:`load_run`) over the folds both have:
    ``{"folds": [...], task: paired_difference(...)}`` for each task."""
    folds = sorted(set(a) & set(b))
    return {"folds": folds, **{t: paired_difference([a[k][t]["f1"] for k in folds], [b[k][t]["f1"] for k in folds])
                               for t in TASKS}}


def compare(runs: Sequence[dict], baseline: dict) -> dict[str, Any]:
    """Mean ± std of P/R/F1 per task for each run and a two-sided paired t-test against ``baseline``."""
    rows = []
    for run in [baseline, *runs]:
        if run["protocol"] != baseline["protocol"]:
            raise UsageError(f"{run['name']}: protocol {run['protocol']!r} differs from the baseline's "
                             f"{baseline['protocol']!r}")
        folds = sorted(set(run["per_fold"]) & set(baseline["per_fold"]))
        row: dict[str, Any] = {"name": run["name"], "kind": run["kind"], "file": run["file"], "folds": folds,
                               "minutes": run["minutes"], "facts": run["facts"], "mean": {}, "std": {}, "ttest": {}}
        for t in TASKS:
            row["mean"][t], row["std"][t] = {}, {}
            for m in ("p", "r", "f1"):
                xs = [run["per_fold"][k][t][m] for k in folds]
                row["mean"][t][m], row["std"][t][m] = _mean_std(xs)
        if run is not baseline and len(folds) > 1:
            paired = paired_over_folds(run["per_fold"], baseline["per_fold"])
            row["ttest"] = {t: paired[t] for t in TASKS}
        rows.append(row)
    return {"protocol": baseline["protocol"], "split": baseline["split"], "baseline": baseline["name"], "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    folds = result["rows"][0]["folds"]
    lines = [f"{result['split']}, {result['protocol']}, folds {','.join(map(str, folds))} (mean ± std over folds); "
             f"p: two-sided paired t-test of F1 over folds against {result['baseline']}", "",
             "| run | pair P | pair R | pair F1 | p | emotion F1 | p | cause F1 | p | fold-minutes (sum) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        m, s, tt = row["mean"], row["std"], row["ttest"]

        def cell(t):
            return f"{m[t]['f1']:.4f} ± {s[t]['f1']:.4f}"

        def p(t):
            return f"{tt[t]['p']:.2g}" if t in tt else "—"

        minutes = f"{row['minutes']:.1f}" if row["minutes"] is not None else "—"
        lines.append(f"| {row['name']} | {m['pair']['p']:.4f} | {m['pair']['r']:.4f} | {cell('pair')} | {p('pair')} | "
                     f"{cell('emotion')} | {p('emotion')} | {cell('cause')} | {p('cause')} | {minutes} |")
    return "\n".join(lines) + "\n"


def _cmd(args) -> int:
    names = args.name or []
    runs = [load_run(r, names[i] if i < len(names) else None) for i, r in enumerate(args.runs)]
    baseline = load_run(args.baseline, args.baseline_name)
    result = compare(runs, baseline)
    text = markdown(result)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1))
        print(f"written: {args.json}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    return 0


def add_subcommand(sub) -> None:
    c = sub.add_parser("compare", help="runs side by side, each against a baseline by a paired t-test over folds",
                       description="Mean ± std of pair / emotion / cause P, R, F1 over the folds that each run shares "
                                   "with the baseline, and a two-sided paired t-test of F1 against the baseline.")
    c.add_argument("runs", nargs="+", help="run folders or their results.json / ensemble.json")
    c.add_argument("--baseline", required=True, help="the run the others are tested against")
    c.add_argument("--name", action="append", help="a display name per run, in order")
    c.add_argument("--baseline-name", help="a display name for the baseline")
    c.add_argument("--json", help="also write the comparison as JSON here")
    c.add_argument("--markdown", help="also write the table as Markdown here")
    c.set_defaults(func=_cmd)
