"""``ecpe reproduce``: the paper's Tables 1-5 and Figure 3 from one command.

Runs (each resumable: finished folds are reused):

- ``e2eecpe``, ``e2eecpe-noaux``, ``e2eecpe-nopos`` — E2EECPE and its two ablations (Tables 2, 3);
- ``indep``, ``inter-ce``, ``inter-ec`` — the two-stage baselines (Table 2). Their "w/o filter" rows
  decode the same trained models with every candidate pair kept: stage 1 is trained once.

Table 4 (threshold eta) and Table 5 (Hard subset) re-use the trained E2EECPE models; nothing is
retrained for them. Figure 3 plots the seconds per epoch recorded by the runs.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .config import TrainConfig
from .data.corpus import find_folds, load_fold, write_documents
from .inference import evaluate, predict
from .metrics import mean_std, score
from .models import MODELS, TwoStageECPE, load_model
from .options import CLIError, add_device_argument, resolve_data
from .significance import paired_difference
from .stats import PAPER_TABLE1, file_stats
from .training import RunSpec, load_done, protocol_label, summarize, train_run
from .training import train_runs as train_pool

__all__ = ["reproduce", "add_subcommand", "PAPER", "Plan", "make_plan", "train_runs", "score_variants",
           "compute_statistics", "draw_figures", "write_report"]

log = logging.getLogger(__name__)

# Published figures (Song et al. 2020), P / R / F1.
PAPER: dict[str, dict[str, tuple[float, float, float]]] = {
    "indep-nofilter": {"emotion": (.8483, .7961, .8208), "cause": (.6898, .5648, .6198), "pair": (.5932, .5094, .5470)},
    "inter-ce-nofilter": {"emotion": (.8458, .8035, .8263), "cause": (.6838, .5754, .6231), "pair": (.5827, .5300, .5531)},
    "inter-ec-nofilter": {"emotion": (.8406, .8097, .8242), "cause": (.6989, .5991, .6426), "pair": (.5975, .5538, .5716)},
    "indep": {"emotion": (.8483, .7961, .8208), "cause": (.6898, .5648, .6198), "pair": (.6943, .5047, .5833)},
    "inter-ce": {"emotion": (.8458, .8035, .8263), "cause": (.6838, .5754, .6231), "pair": (.6780, .5254, .5896)},
    "inter-ec": {"emotion": (.8406, .8097, .8242), "cause": (.6989, .5991, .6426), "pair": (.6691, .5503, .6013)},
    "e2eecpe": {"emotion": (.8595, .7915, .8238), "cause": (.7062, .6030, .6503), "pair": (.6478, .6105, .6280)},
    "e2eecpe-noaux": {"pair": (.5982, .5340, .5635)},
    "e2eecpe-nopos": {"pair": (.6421, .6158, .6275)},
}
PAPER_ETA = {0.2: (.5743, .6456, .6071), 0.3: (.6478, .6105, .6280), 0.4: (.6757, .5849, .6265),
             0.5: (.7185, .5543, .6255), 0.6: (.7326, .5385, .6201)}
PAPER_HARD = {"Full": (.6478, .6105, .6280), "Hard": (.6002, .6479, .6226)}

PROTOCOL_PAPER_SAME = "paper protocol: best epoch on test"

LABELS = {"indep-nofilter": "Indep w/o filter", "inter-ce-nofilter": "Inter-CE w/o filter",
          "inter-ec-nofilter": "Inter-EC w/o filter", "indep": "Indep", "inter-ce": "Inter-CE", "inter-ec": "Inter-EC",
          "e2eecpe": "E2EECPE", "e2eecpe-noaux": "E2EECPE w/o auxiliary", "e2eecpe-nopos": "E2EECPE w/o position"}

# run name -> (registered model, model config)
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "e2eecpe": ("e2eecpe", {}),
    "e2eecpe-noaux": ("e2eecpe", {"use_aux": False}),
    "e2eecpe-nopos": ("e2eecpe", {"use_position": False}),
    "indep": ("indep", {"filter": True}),
    "inter-ce": ("inter-ce", {"filter": True}),
    "inter-ec": ("inter-ec", {"filter": True}),
}
ETAS = (0.2, 0.3, 0.4, 0.5, 0.6)
# tiny settings for --quick (a smoke test, not a result), per model schedule
QUICK_CONFIG = {"single": {"embed_dim": 16, "filters": 4, "hidden": 8, "vertex_dim": 8},
                "two-stage": {"embed_dim": 16, "hidden": 8, "pos_dim": 8, "stage1_epochs": 1, "stage2_epochs": 1}}


# ---- helpers --------------------------------------------------------------------------------------
def _available_runs(names):
    return [n for n in names if RUNS[n][0] in MODELS]


def _quick_data(data: Path, split: str, out: Path, n_folds: int = 2, n_train: int = 48, n_test: int = 16) -> Path:
    """A small copy of the first folds (``--quick``), written in the NUSTM format."""
    dst = out / "quick-data" / split
    dst.mkdir(parents=True, exist_ok=True)
    for k in range(1, n_folds + 1):
        fold = load_fold(data / split, k)
        write_documents(fold.train[:n_train], dst / f"fold{k}_train.txt")
        write_documents(fold.test[:n_test], dst / f"fold{k}_test.txt")
        if fold.dev is not None:
            write_documents(fold.dev[:n_test], dst / f"fold{k}_valid.txt")
    return dst


def _per_fold_seconds(seconds: dict[str, list[float]]) -> float:
    """Seconds per epoch of one fold: the mean epoch of each stage, summed over stages (one for E2EECPE)."""
    means = [statistics.fmean(v) for v in seconds.values() if v]
    return sum(means) if means else float("nan")


def _eval_variants(run_dir: Path, split_dir: Path, folds: list[int], etas, want_nofilter: bool,
                   device: str = "cpu") -> dict[str, Any]:
    """Re-use each fold's saved model: eta sweep, Hard subset, and the w/o-filter decoding."""
    out: dict[str, Any] = {"eta": {str(e): [] for e in etas}, "hard": [], "full": [], "nofilter": []}
    for k in folds:
        model, _ = load_model(run_dir / f"fold{k}" / "model.pt", device=device)
        test = load_fold(split_dir, k).test
        t = model.tensorize(test)
        if etas:
            for e in etas:
                out["eta"][str(e)].append({"fold": k, **evaluate(model, t, threshold=e)})
            preds = predict(model, t)
            hard = [i for i, d in enumerate(test) if len(d.pairs) == 1]
            out["full"].append({"fold": k, **score(test, preds)})
            out["hard"].append({"fold": k, "n_docs": len(hard),
                                **score([test[i] for i in hard], [preds[i] for i in hard])})
        if want_nofilter and isinstance(model, TwoStageECPE):
            model.config.filter = False  # decode with every candidate kept: same stage 1, no stage 2
            out["nofilter"].append({"fold": k, **evaluate(model, t)})
    return out


# ---- report -------------------------------------------------------------------------------------
def _cell(mean: float, std: float | None = None) -> str:
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _diff(ours: float, paper: float | None) -> str:
    return "" if paper is None else f"{ours - paper:+.4f}"


def _table2(summaries: dict[str, dict], nofilter: dict[str, dict], ttest: dict) -> list[str]:
    lines = ["| Model | Emotion P | Emotion R | Emotion F1 | Cause P | Cause R | Cause F1 | Pair P | Pair R | Pair F1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = ["indep-nofilter", "inter-ce-nofilter", "inter-ec-nofilter", "indep", "inter-ce", "inter-ec", "e2eecpe"]
    for name in order:
        s = summaries.get(name) or nofilter.get(name)
        if s is None:
            continue
        cells = []
        for task in ("emotion", "cause", "pair"):
            for j, m in enumerate(("p", "r", "f1")):
                ours = s["mean"][task][m]
                paper = PAPER.get(name, {}).get(task, (None,) * 3)[j]
                mark = "†" if name == "e2eecpe" and ttest.get(f"{task}.{m}", {}).get("significant") else ""
                cells.append(f"{ours:.4f}{mark} ± {s['std'][task][m]:.4f}<br>paper {paper if paper is not None else '–'}"
                             f" ({_diff(ours, paper)})")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return lines


def _ttest(a: dict, b: dict) -> dict[str, dict]:
    """Paired t-test over folds of E2EECPE (a) against Inter-EC (b) for each task and measure."""
    fa = {f["fold"]: f for f in a["per_fold"]}
    fb = {f["fold"]: f for f in b["per_fold"]}
    folds = sorted(set(fa) & set(fb))
    out = {}
    if len(folds) < 2:
        return out
    for task in ("emotion", "cause", "pair"):
        for m in ("p", "r", "f1"):
            xa = [fa[k][task][m] for k in folds]
            xb = [fb[k][task][m] for k in folds]
            if xa == xb:
                continue
            d = paired_difference(xa, xb)
            out[f"{task}.{m}"] = {"t": d["t"], "p": d["p"], "mean_diff": d["mean_diff"],
                                  "significant": bool(d["p"] < 0.05 and d["mean_diff"] > 0), "folds": folds}
    return out


def _figure_eta(eta_rows: dict, path: Path) -> None:
    import matplotlib  # heavy to import: on use only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = sorted(float(e) for e in eta_rows)
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    for key, label in (("p", "P"), ("r", "R"), ("f1", "F1")):
        ax.plot(xs, [eta_rows[str(x)][key] for x in xs], marker="o", label=f"ours {label}")
        ax.plot(xs, [PAPER_ETA[x][("p", "r", "f1").index(key)] for x in xs], linestyle="--", alpha=0.5,
                label=f"paper {label}")
    ax.set_xlabel("threshold η")
    ax.set_ylabel("pair extraction")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _figure_runtime(seconds: dict[str, dict[int, float]], path: Path, machine: str) -> None:
    import matplotlib  # heavy to import: on use only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(seconds)
    folds = sorted({k for v in seconds.values() for k in v})
    rows = [f"Fold {k}" for k in folds] + ["Average"]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(rows) * max(1, len(models)) / 2 + 1.5), dpi=120)
    h = 0.8 / max(len(models), 1)
    for j, m in enumerate(models):
        vals = [seconds[m].get(k, np.nan) for k in folds]
        vals.append(float(np.nanmean(vals)) if vals else np.nan)
        ax.barh(np.arange(len(rows)) + j * h, vals, height=h, label=LABELS.get(m, m))
    ax.set_yticks(np.arange(len(rows)) + h * (len(models) - 1) / 2)
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per epoch (two-stage: stage 1 + stage 2)")
    ax.set_title(machine, fontsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@dataclass
class Plan:
    """What one ``reproduce`` invocation runs: where, which runs, with which training settings."""

    data: Path
    out: Path
    protocol: str            # "dev" or "paper"
    split: str
    split_dir: Path          # the split's folder (a small copy of it with ``quick``)
    folds: list[int]
    requested: list[str]     # run names asked for
    names: list[str]         # those whose model is available
    cfg: TrainConfig
    jobs: int = 1
    quick: bool = False
    seed: int = 1
    device: str = "cpu"
    engine: str = "local"    # "ray": every fold of every run a Ray task (ecpe.training.train_runs)
    address: str | None = None

    @property
    def label(self) -> str:
        return protocol_label(self.cfg.select_on)

    @property
    def missing(self) -> list[str]:
        return [n for n in self.requested if n not in self.names]


def make_plan(data: Path, out: Path, protocol: str = "dev", split: str = "split10", jobs: int = 1, quick: bool = False,
              runs: list[str] | None = None, epochs: int | None = None, seed: int = 1, device: str = "cpu",
              engine: str = "local", address: str | None = None) -> Plan:
    """Step 0: the folds, runs and training settings (with ``quick``, writes the small data copy)."""
    out.mkdir(parents=True, exist_ok=True)
    select_on = {"dev": "dev", "paper": "test"}[protocol]
    split_dir = _quick_data(data, split, out) if quick else data / split
    requested = list(runs or RUNS)
    cfg = TrainConfig(select_on=select_on, seed=seed, device=device)
    if epochs is not None:
        cfg.epochs = epochs
    if quick:
        cfg.epochs, cfg.patience = epochs or 1, 1
    return Plan(data, out, protocol, split, split_dir, find_folds(split_dir), requested, _available_runs(requested),
                cfg, jobs, quick, seed, device, engine, address)


def run_config(plan: Plan, name: str) -> dict[str, Any]:
    """The model config of a run (the tiny settings of its model family with ``quick``)."""
    model_name, mcfg = RUNS[name]
    quick = QUICK_CONFIG[MODELS[model_name].schedule] if plan.quick else {}
    return {**mcfg, **quick}


def train_runs(plan: Plan, progress: bool = True, report_only: bool = False) -> dict[str, dict]:
    """Step 1: train (or resume) every run; with ``report_only``, only collect the folds finished so far.
    Returns each run's summary (:func:`ecpe.training.train_run`)."""
    summaries: dict[str, dict] = {}
    if plan.engine == "ray" and not report_only:  # every fold of every run in one pool of Ray tasks
        specs = [RunSpec(RUNS[n][0], plan.split_dir, plan.folds, run_config(plan, n), plan.cfg, plan.out / "runs" / n)
                 for n in plan.names]
        return dict(zip(plan.names, train_pool(specs, progress=progress, engine="ray", address=plan.address)))
    bar = tqdm(plan.names, desc="reproduce", disable=not progress)
    for name in bar:
        bar.set_postfix(run=name)
        model_name, mcfg = RUNS[name][0], run_config(plan, name)
        run_dir = plan.out / "runs" / name
        if report_only:  # no training: the folds finished so far
            done = [r for k in plan.folds if (r := load_done(run_dir / f"fold{k}", plan.cfg)) is not None]
            if done:
                summaries[name] = summarize(model_name, plan.split, [r["fold"] for r in done], plan.cfg, mcfg, done)
            continue
        summaries[name] = train_run(model_name, plan.split_dir, plan.folds, mcfg, plan.cfg, run_dir,
                                    progress=progress and plan.jobs == 1, jobs=plan.jobs)
    return summaries


def score_variants(plan: Plan, summaries: dict[str, dict]) -> dict[str, dict]:
    """Step 2: re-use the trained models (eta sweep and Hard subset for E2EECPE, w/o-filter decoding for the
    two-stage models); writes ``variants.json``."""
    variants = {name: _eval_variants(plan.out / "runs" / name, plan.split_dir, summaries[name]["folds"],
                                     ETAS if name == "e2eecpe" else (), RUNS[name][0] != "e2eecpe", plan.device)
                for name in plan.names if name in summaries}
    (plan.out / "variants.json").write_text(json.dumps(variants, ensure_ascii=False, indent=1))
    return variants


def compute_statistics(summaries: dict[str, dict], variants: dict[str, dict]) -> dict[str, Any]:
    """Step 3: the w/o-filter rows (mean and std over folds), the paired t-test of E2EECPE against Inter-EC,
    the mean of each eta over folds, and the seconds per epoch of each fold."""
    nofilter = {}
    for name, v in variants.items():
        rows = v["nofilter"]
        if rows:
            mean, std = mean_std(rows)
            # emotion/cause come from the same stage 1: identical to the filtered rows
            nofilter[f"{name}-nofilter"] = {"mean": mean, "std": std, "per_fold": rows}
    ttest = _ttest(summaries["e2eecpe"], summaries["inter-ec"]) if {"e2eecpe", "inter-ec"} <= set(summaries) else {}
    eta_means = {}
    if "e2eecpe" in variants and variants["e2eecpe"]["full"]:
        eta_means = {str(e): mean_std(variants["e2eecpe"]["eta"][str(e)], tasks=("pair",))[0]["pair"] for e in ETAS}
    seconds = {n: {f["fold"]: _per_fold_seconds(f.get("stage_seconds", {})) for f in summaries[n]["per_fold"]}
               for n in summaries if n in ("indep", "inter-ce", "inter-ec", "e2eecpe")}
    return {"nofilter": nofilter, "ttest": ttest, "eta_means": eta_means, "seconds": seconds}


def machine_line(plan: Plan, summaries: dict[str, dict]) -> str:
    if plan.engine == "ray":
        machine = f"a Ray cluster (driver: {os.cpu_count()} CPU cores, {platform.machine()}), one Ray task and " \
                  f"{plan.cfg.threads or 1} torch thread(s) per fold"
    else:
        threads = plan.cfg.threads or (max(1, (os.cpu_count() or 1) // plan.jobs) if plan.jobs > 1 else "all")
        machine = (f"{os.cpu_count()} CPU cores, {platform.machine()}, {plan.jobs} parallel job(s), "
                   f"torch threads per job: {threads}")
    if plan.device != "cpu":
        gpus = sorted({f.get("environment", {}).get("gpu", "") for s in summaries.values() for f in s["per_fold"]} - {""})
        machine += f", device {plan.device}" + (f" ({', '.join(gpus)})" if gpus else "")
    return machine


def draw_figures(out: Path, stats: dict[str, Any], machine: str) -> list[Path]:
    """Step 4: Table 4's eta curve and Figure 3's seconds per epoch, as PNG files (those with data)."""
    paths = []
    if stats["eta_means"]:
        _figure_eta(stats["eta_means"], out / "table4_eta.png")
        paths.append(out / "table4_eta.png")
    if stats["seconds"]:
        _figure_runtime(stats["seconds"], out / "figure3_runtime.png", machine)
        paths.append(out / "figure3_runtime.png")
    return paths


def write_report(plan: Plan, summaries: dict[str, dict], variants: dict[str, dict], stats: dict[str, Any],
                 machine: str, minutes: float) -> Path:
    """Step 5: ``report.md`` (Tables 1-5, Figure 3) and ``results.json``."""
    data, out, protocol, split, jobs, quick, seed = plan.data, plan.out, plan.protocol, plan.split, plan.jobs, plan.quick, plan.seed
    folds, plabel, missing, select_on = plan.folds, plan.label, plan.missing, plan.cfg.select_on
    nofilter, ttest, seconds = stats["nofilter"], stats["ttest"], stats["seconds"]
    folds_str = ",".join(map(str, folds))
    head = f"protocol: **{plabel}** · split: **{split}**{' (quick smoke data)' if quick else ''} · folds: {folds_str} · seed: {seed}"
    md = ["# Reproduction of Song et al. (2020), E2EECPE", "",
          f"Command: `ecpe reproduce --data {data} --out {out} --protocol {protocol} --split {split} --jobs {jobs}"
          f"{' --quick' if quick else ''}`", "", head, "",
          f"Machine: {machine}. Wall time of this invocation: {minutes:.1f} min "
          "(folds reused from earlier invocations are not counted; per-fold wall times are in runs/*/results.json).", ""]
    commits = sorted({f.get("environment", {}).get("commit", "not recorded") for s in summaries.values()
                      for f in s["per_fold"]})
    if commits:
        md += [f"Code (git commit each fold was trained with): {', '.join(commits)}.", ""]
    sources = sorted({str(f.get("embeddings", {}).get("source", "not recorded")) for s in summaries.values()
                      for f in s["per_fold"]})
    if sources:  # the paper's Weibo vectors are not distributed: say which vectors every model started from
        md += [f"Word vectors: {'; '.join(sources)} (the paper's model; `ecpe train --preset best` adds vectors "
               "from packaged corpora, see docs/accuracy.md).", ""]
    if missing:
        md += [f"Not run (model not available in this build): {', '.join(missing)}.", ""]
    partial = {n: s["folds"] for n, s in summaries.items() if s["folds"] != folds}
    if partial:
        md += ["**Partial report**: some runs have not finished every fold yet; their rows average only these "
               "folds (re-run the command to continue them):", ""]
        md += [f"- {LABELS[n]}: folds {','.join(map(str, f))}" for n, f in partial.items()]
        md.append("")
    not_started = [n for n in plan.requested if n not in summaries and n not in missing]
    if not_started:
        md += [f"Not started yet: {', '.join(LABELS[n] for n in not_started)}.", ""]
    # Table 1
    all_pairs = data / "all_data_pair.txt"
    if all_pairs.exists():
        st = file_stats(all_pairs)
        md += ["## Table 1 — dataset statistics (computed from all_data_pair.txt)", "",
               "| | paper | ours (pairs as listed) | ours (duplicates removed) |", "|---|---|---|---|"]
        listed = st.get("listed", {})
        for key, label in (("documents", "documents"), ("clauses_per_doc", "avg. clauses per document"),
                           ("pairs", "EC pairs"), ("docs_with_1_pair", "documents with 1 pair"),
                           ("docs_with_more_pairs", "documents with >1 pairs"), ("offset_0", "pairs with offset 0"),
                           ("offset_1", "pairs with offset 1"), ("offset_2", "pairs with offset 2"),
                           ("offset_gt2", "pairs with offset >2"), ("max_offset", "maximum offset"),
                           ("mean_offset", "mean offset")):
            def fmt(v):
                return f"{v:.4f}" if isinstance(v, float) else str(v)
            md.append(f"| {label} | {PAPER_TABLE1[key]} | {fmt(listed.get(key, st.get(key)))} | {fmt(st.get(key))} |")
        md += ["", "The paper prints 2,105 documents and 421 multi-pair documents; the published data has 1,945 "
               "documents, of which 199 list more than one pair (180 once duplicated pairs are merged). "
               "421 = 2,167 − 1,746, pairs minus single-pair documents.", ""]
    # Table 2
    md += [f"## Table 2 — emotion, cause and pair extraction ({plabel}, {split}, mean ± std over folds {folds_str})", ""]
    md += _table2(summaries, nofilter, ttest)
    md += ["", "Each cell: ours (mean ± std over folds), the paper's figure and our difference. "
           "The w/o-filter rows decode the same trained two-stage models keeping every candidate (stage 1 is shared).",
           "† E2EECPE better than Inter-EC by a two-sided paired t-test over folds (scipy.stats.ttest_rel, p < 0.05).", ""]
    if ttest:
        md += ["| E2EECPE vs Inter-EC | mean difference | t | p |", "|---|---|---|---|"]
        md += [f"| {k} | {v['mean_diff']:+.4f} | {v['t']:.3f} | {v['p']:.4g} |" for k, v in ttest.items()]
        md.append("")
    # the paper's protocol, read from the same dev-selected runs (test scores were recorded every epoch)
    same = {n: [f["paper_protocol_from_same_run"] for f in s["per_fold"] if "paper_protocol_from_same_run" in f]
            for n, s in summaries.items()}
    same = {n: rows for n, rows in same.items() if rows and len(rows) == len(summaries[n]["per_fold"])}
    if same and select_on == "dev":
        md += [f"### For comparison: best epoch on the test fold, from the same runs ({PROTOCOL_PAPER_SAME}, {split}, "
               f"folds {folds_str})", "",
               "The runs above record test scores after every epoch without using them; this table picks, per fold, "
               "the epoch with the best test pair F1, as the paper's protocol did. It is optimistic by construction "
               "and shown only to separate the effect of the protocol from that of the implementation.", "",
               "| Model | Pair P | Pair R | Pair F1 | paper P / R / F1 |", "|---|---|---|---|---|"]
        for n, rows in same.items():
            mean, std = mean_std(rows, tasks=("pair",))
            paper = PAPER.get(n, {}).get("pair")
            md.append(f"| {LABELS[n]} | " + " | ".join(_cell(mean["pair"][m], std["pair"][m]) for m in ("p", "r", "f1"))
                      + f" | {' / '.join(f'{v:.4f}' for v in paper) if paper else '–'} |")
        md.append("")
    # Table 3
    abl = [n for n in ("e2eecpe", "e2eecpe-noaux", "e2eecpe-nopos") if n in summaries]
    if abl:
        md += [f"## Table 3 — ablation ({plabel}, {split}, folds {folds_str})", "",
               "| Model | P | R | F1 | paper P / R / F1 |", "|---|---|---|---|---|"]
        for n in abl:
            s = summaries[n]
            only = f" (folds {','.join(map(str, s['folds']))} only)" if s["folds"] != folds else ""
            md.append(f"| {LABELS[n]}{only} | " + " | ".join(_cell(s["mean"]["pair"][m], s["std"]["pair"][m]) for m in ("p", "r", "f1"))
                      + f" | {' / '.join(f'{v:.4f}' for v in PAPER[n]['pair'])} |")
        md.append("")
    # Table 4 and 5
    if "e2eecpe" in variants and variants["e2eecpe"]["full"]:
        v = variants["e2eecpe"]
        md += [f"## Table 4 — threshold η at inference (same trained E2EECPE models; {plabel}, {split}, folds {folds_str})",
               "", "| η | P | R | F1 | paper P / R / F1 |", "|---|---|---|---|---|"]
        for e in ETAS:
            mean, std = mean_std(v["eta"][str(e)], tasks=("pair",))
            md.append(f"| {e} | " + " | ".join(_cell(mean["pair"][m], std["pair"][m]) for m in ("p", "r", "f1"))
                      + f" | {' / '.join(f'{x:.4f}' for x in PAPER_ETA[e])} |")
        md += ["", "![P, R, F1 against eta](table4_eta.png)", "",
               f"## Table 5 — Hard subset: test documents with exactly one pair ({plabel}, {split}, folds {folds_str})", "",
               "| Dataset | P | R | F1 | paper P / R / F1 |", "|---|---|---|---|---|"]
        for label, rows in (("Full", v["full"]), ("Hard", v["hard"])):
            mean, std = mean_std(rows, tasks=("pair",))
            md.append(f"| {label} | " + " | ".join(_cell(mean["pair"][m], std["pair"][m]) for m in ("p", "r", "f1"))
                      + f" | {' / '.join(f'{x:.4f}' for x in PAPER_HARD[label])} |")
        md.append("")
    # Figure 3
    if seconds:
        md += [f"## Figure 3 — seconds per epoch ({machine}; two-stage: stage 1 + stage 2)", "",
               "| Model | " + " | ".join(f"fold {k}" for k in folds) + " | average |",
               "|---|" + "---|" * (len(folds) + 1)]
        for n, per in seconds.items():
            vals = [per.get(k) for k in folds]
            avg = statistics.fmean([x for x in vals if x is not None]) if any(x is not None for x in vals) else float("nan")
            md.append(f"| {LABELS[n]} | " + " | ".join("–" if x is None else f"{x:.2f}" for x in vals) + f" | {avg:.2f} |")
        if "e2eecpe" in seconds:
            e2e = statistics.fmean(seconds["e2eecpe"].values())
            for n in ("indep", "inter-ce", "inter-ec"):
                if n in seconds:
                    md.append(f"\n{LABELS[n]} / E2EECPE: {statistics.fmean(seconds[n].values()) / e2e:.1f}× "
                              f"(paper: 6–7×)")
        md += ["", "![seconds per epoch](figure3_runtime.png)", ""]
    failures = {n: s["failures"] for n, s in summaries.items() if s.get("failures")}
    if failures:
        md += ["## Failed folds", "", "```", json.dumps(failures, indent=1), "```", ""]
    (out / "results.json").write_text(json.dumps({"protocol": plabel, "split": split, "folds": folds, "seed": seed,
                                                  "summaries": summaries, "ttest": ttest,
                                                  "nofilter": nofilter}, ensure_ascii=False, indent=1))
    report = out / "report.md"
    report.write_text("\n".join(md) + "\n", encoding="utf-8")
    return report


def reproduce(data: Path, out: Path, protocol: str = "dev", split: str = "split10", jobs: int = 1, quick: bool = False,
              runs: list[str] | None = None, epochs: int | None = None, progress: bool = True, seed: int = 1,
              report_only: bool = False, device: str = "cpu", engine: str = "local", address: str | None = None) -> Path:
    """Run (or resume) every experiment and write ``out/report.md`` with PNG figures and per-fold JSON:
    train runs -> score variants -> statistics -> figures -> report."""
    started = time.time()
    plan = make_plan(data, out, protocol, split, jobs, quick, runs, epochs, seed, device, engine, address)
    summaries = train_runs(plan, progress, report_only)
    variants = score_variants(plan, summaries)
    stats = compute_statistics(summaries, variants)
    machine = machine_line(plan, summaries)
    draw_figures(out, stats, machine)
    return write_report(plan, summaries, variants, stats, machine, (time.time() - started) / 60)


def add_subcommand(sub) -> None:
    r = sub.add_parser("reproduce", help="re-run the paper's experiments and write a report (tables, figures, JSON)",
                       description="Train E2EECPE, its ablations and the two-stage baselines over every fold (resuming "
                                   "finished folds), then write report.md with Tables 1-5, Figure 3 and per-fold JSON.")
    r.add_argument("--data", help="dataset folder holding all_data_pair.txt and split10/ (default $ECPE_DATA or cache)")
    r.add_argument("--out", required=True, help="output folder (runs/, report.md, PNGs, JSON)")
    r.add_argument("--protocol", choices=["dev", "paper"], default="dev",
                   help="dev: epochs selected on a dev set (default); paper: best epoch on the test fold, labelled")
    r.add_argument("--split", choices=["split10", "split20"], default="split10")
    r.add_argument("--jobs", type=int, default=1, help="folds trained in parallel processes")
    r.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default: --jobs processes here) or ray: every fold of every run a Ray task "
                        "(one CPU and one torch thread each; docs/cluster.md)")
    r.add_argument("--address", help="--engine ray: the cluster to join (default as ecpe train --engine ray)")
    r.add_argument("--quick", action="store_true", help="smoke test: 2 folds of a few documents, 1 epoch, tiny model")
    r.add_argument("--runs", help=f"comma-separated subset of: {', '.join(RUNS)}")
    r.add_argument("--epochs", type=int,
                   help="override the maximum epochs (two-stage models: a cap on the epochs of each stage)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--report-only", action="store_true",
                   help="train nothing: write the report from the folds finished so far (marked as partial)")
    r.add_argument("-q", "--quiet", action="store_true")
    add_device_argument(r)
    r.set_defaults(func=_cmd)


def _cmd(args) -> int:
    data = resolve_data(args.data)
    runs = [r.strip() for r in args.runs.split(",")] if args.runs else None
    if runs:
        bad = [r for r in runs if r not in RUNS]
        if bad:
            raise CLIError(f"unknown run(s) {bad}; choose from {', '.join(RUNS)}")
    report = reproduce(data, Path(args.out), args.protocol, args.split, args.jobs, args.quick, runs, args.epochs,
                       progress=not args.quiet, seed=args.seed, report_only=args.report_only,
                       device=args.device, engine=args.engine, address=args.address)
    print(f"report: {report}")
    return 0
