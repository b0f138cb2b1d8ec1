"""Folds and runs: train and evaluate one fold; a run of folds (each written when done, reused on a re-run,
optionally in parallel processes); one model on every document of a split, for use.

A fresh model and optimizer per fold, the epoch selected on a dev set. The paper's own protocol (best epoch
chosen on the test fold) is available as ``select_on="test"`` and is labelled as such in every output.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..cluster import run_on_ray
from ..errors import ECPEError, UsageError
from ..config import TrainConfig, from_dict, to_dict
from ..data.corpus import Document, Fold, find_folds, load_fold
from ..devices import device_info, resolve_device, retain_freed_memory
from ..inference import evaluate
from ..metrics import mean_std
from ..models import build_model, model_class, save_model
from ..workers import process_pool
from .distill import set_teacher_targets
from .recipe import DEFAULT_PREPROCESS, RecipeMismatch, check_run, fold_recipe, write_fold_result
from .schedules import SCHEDULES
from .setup import build_embeddings, build_vocab, dev_split, fold_seed, lexicon_features, word_vectors
from .student import load_transfer, mix_transfer, transfer_active
from .trainer import NO_TEST, Trainer, protocol_label, seed_everything

log = logging.getLogger(__name__)


def environment(device: torch.device | None = None) -> dict[str, Any]:
    """What a result was computed with: versions, cores, threads, device and (from a git checkout) the commit."""
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "machine": platform.machine(), **device_info(device or torch.device("cpu"))}
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode == 0:
            info["commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "."],
                                   capture_output=True, text=True, timeout=5)
            info["uncommitted_changes"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def train_fold(model_name: str, fold: Fold, model_config: dict[str, Any], cfg: TrainConfig, out_dir: str | Path | None,
               progress: bool = True, preprocess: dict[str, Any] | None = None,
               recipe: dict[str, Any] | None = None, about: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and evaluate one fold; saves ``out_dir/model.pt`` and ``out_dir/result.json``.

    The dev set is the fold's own (split20) or a seeded share of its training documents (split10).
    The vocabulary and the word vectors come from the training documents only.
    ``recipe`` (:func:`fold_recipe`) is recorded in the result, for :func:`check_run` to compare on a re-run;
    ``about`` (how the model was asked for: preset, command, data) goes into the checkpoint's meta, for its card.
    A fold without test documents (:func:`final_fold`) is trained and selected the same way, with no test figure.
    """
    protocol = protocol_label(cfg.select_on)
    has_test = bool(fold.test)
    if not has_test:
        if cfg.select_on != "dev":
            raise UsageError("a model trained on all documents has no test fold to select on: use --select-on dev")
        protocol += f"; {NO_TEST}"
    device = resolve_device(cfg.device)
    wall_start = time.perf_counter()
    # denormal floats (tiny values in late epochs) slow CPU arithmetic 2-3x; flushing them to zero changes
    # no selected epoch or F1 measured (fold 1: 2.3 -> 6.0 s/epoch without, 2.4 -> 2.6 s with)
    torch.set_flush_denormal(True)
    if device.type == "cpu":
        retain_freed_memory()  # each step reuses the pages the last one freed (docs/speed.md)
    seed_everything(fold_seed(cfg.seed, fold))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_docs, dev_docs, dev_source = dev_split(fold, cfg.dev_share_seed, cfg.dev_fraction)
    dim = from_dict(model_class(model_name).config_class, model_config).embed_dim  # unknown keys: ConfigError

    def fresh_model(docs: Sequence[Document], extra: Sequence[Document] = ()):
        """A new model whose vocabulary (and, for "train" vectors, word2vec) comes from ``docs``; the words of
        ``extra`` (a student's transfer documents) join the vocabulary, not the word2vec."""
        vectors, vec_info = word_vectors(cfg, docs, fold.train, dim, progress=progress)
        vocab = build_vocab([*docs, *extra], cfg, vectors)
        matrix, emb_info = build_embeddings(vocab, dim, cfg, vectors, vec_info)
        resources = {}
        if model_config.get("lexicon"):
            resources["lexicon_features"], emb_info["lexicon"] = lexicon_features(vocab, model_config["lexicon"])
        return build_model(model_name, vocab, model_config, matrix, **resources).to(device), vocab, emb_info

    transfer = None
    if transfer_active(cfg):
        if model_class(model_name).schedule != "single":
            raise ValueError(f"--transfer trains an E2EECPE student, not {model_name!r}")
        if cfg.refit:
            raise ValueError("--refit retrains on the dev share without the transfer documents: not with --transfer")
        transfer = load_transfer(cfg, fold, dev_docs)
    model, vocab, emb_info = fresh_model(train_docs, transfer.docs if transfer else ())
    train_t, dev_t = model.tensorize(train_docs), model.tensorize(dev_docs)
    test_t = model.tensorize(fold.test) if has_test else None
    distill_info = None
    if cfg.teachers and cfg.pseudo_threshold is None:  # self-training: the teacher labels transfer documents only
        distill_info = set_teacher_targets(train_t, cfg, fold.index, device)
    if transfer is not None:
        train_t = mix_transfer(model, train_t, transfer, cfg)
        transfer.info.update(weight=train_t.weight, batch_size=train_t.transfer_batch_size)
    select_t = dev_t if cfg.select_on == "dev" else test_t
    trainer = Trainer(cfg, select_key=model.select_key, progress=progress, desc=f"fold {fold.index}",
                      monitor=test_t if cfg.select_on == "dev" else None)
    history = SCHEDULES[model.schedule](model, trainer, train_t, select_t,
                                        select_name="dev" if cfg.select_on == "dev" else "test")
    test_metrics = evaluate(model, test_t) if has_test else None
    dev_metrics = evaluate(model, dev_t)
    refit_info = None
    if cfg.refit:
        # the epoch count was chosen on dev; a fresh model (same seed) now trains that many epochs on the
        # training documents *and* the dev share, and replaces the selected one (its test score is reported)
        selected = {"epoch": history.best_epoch, "dev": dev_metrics,
                    **({"test": {k: test_metrics[k] for k in ("pair", "emotion", "cause")}} if has_test else {})}
        seed_everything(fold_seed(cfg.seed, fold))
        refit_docs = list(fold.train) + list(fold.dev or [])  # split10: the dev share is part of fold.train
        model, vocab, emb_info = fresh_model(refit_docs)
        refit_t = model.tensorize(refit_docs)
        test_t = model.tensorize(fold.test) if has_test else None
        epochs = max(history.best_epoch, 1)
        refit_history = Trainer(dataclasses.replace(cfg, epochs=epochs, patience=epochs), progress=progress,
                                desc=f"fold {fold.index} refit", monitor=test_t).fit(model, refit_t, None)
        test_metrics = evaluate(model, test_t) if has_test else None
        refit_info = {"epochs": epochs, "n_train": len(refit_docs), "selected_model": selected,
                      "history": refit_history.epochs,
                      "note": "dev scores are those of the selected model: the refit model trained on the dev share"}
    result = {
        "fold": fold.index, **({k: test_metrics[k] for k in ("pair", "emotion", "cause")} if has_test else {}),
        "dev": dev_metrics, "protocol": protocol, "best_epoch": history.best_epoch,
        "best_epochs": history.best_epochs, "stage_seconds": history.stage_seconds,
        "history": history.epochs, "n_train": len(train_docs), "n_dev": len(dev_docs), "dev_source": dev_source,
        "n_test": len(fold.test), "vocab_size": len(vocab), "embeddings": emb_info,
        "wall_seconds": time.perf_counter() - wall_start, "environment": environment(device),
        **({"distillation": distill_info} if distill_info else {}),
        **({"transfer": transfer.info} if transfer is not None else {}),
        **({"refit": refit_info} if refit_info else {}),
        **({"recipe": recipe} if recipe else {}),
    }
    monitored = [e for e in history.epochs if "test" in e]
    if monitored:  # for comparison with the paper only: its protocol picked the epoch on the test fold
        best = max(monitored, key=lambda e: e["test"]["pair"]["f1"])
        result["paper_protocol_from_same_run"] = {
            "note": "best epoch on the test fold among the epochs of this dev-selected run (the paper's protocol)",
            "epoch": best["epoch"], **{k: best["test"][k] for k in ("pair", "emotion", "cause")}}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = {"protocol": protocol, "split": fold.split, "fold": fold.index, "test": test_metrics, "dev": dev_metrics,
                "train_config": to_dict(cfg), "best_epoch": history.best_epoch,
                "n_train": refit_info["n_train"] if refit_info else len(train_docs),
                "vocab_size": len(vocab), "trained": time.strftime("%Y-%m-%d"), **({"about": about} if about else {})}
        ckpt = save_model(model, out_dir / "model.pt", preprocess or DEFAULT_PREPROCESS, meta)
        result["checkpoint"] = str(ckpt)
        write_fold_result(out_dir, result)
    return result


def summarize(model_name: str, split: str, folds: list[int], cfg: TrainConfig, model_config: dict,
              per_fold: list[dict]) -> dict[str, Any]:
    mean, std = mean_std(per_fold)
    return {"model": model_name, "protocol": protocol_label(cfg.select_on), "split": split, "folds": folds,
            "seed": cfg.seed, "config": {"model": to_dict(from_dict(model_class(model_name).config_class, model_config)),
                                         "train": to_dict(cfg)}, "mean": mean, "std": std,
            "per_fold": [{k: v for k, v in f.items() if k != "history"} for f in per_fold]}


def _fold_task(model_name, split_dir, k, model_config, cfg, fold_dir, preprocess, recipe, about=None):
    """Run one fold in a worker process (quietly) and return its result."""
    logging.basicConfig(level=logging.WARNING)
    return train_fold(model_name, load_fold(split_dir, k), model_config, cfg, fold_dir, False, preprocess, recipe,
                      about)


def load_done(fold_dir: Path, cfg: TrainConfig) -> dict | None:
    """A finished fold's result under the same protocol, or None (resuming compares the whole recipe:
    :func:`check_run`)."""
    done = fold_dir / "result.json"
    if done.exists():
        res = json.loads(done.read_text())
        if res.get("protocol") == protocol_label(cfg.select_on):
            return res
    return None


@dataclass
class RunSpec:
    """One run folder of :func:`train_runs`: a model, its settings and the folds of a split to train."""

    model_name: str
    split_dir: str | Path
    folds: list[int]
    model_config: dict[str, Any]
    cfg: TrainConfig
    run_dir: str | Path
    preprocess: dict | None = None
    about: dict[str, Any] | None = None


ENGINES = ("local", "ray")


def train_run(model_name: str, split_dir: str | Path, folds: list[int], model_config: dict[str, Any], cfg: TrainConfig,
              run_dir: str | Path, progress: bool = True, preprocess: dict | None = None,
              on_fold: Callable[[dict], None] | None = None, jobs: int = 1, overwrite: bool = False,
              about: dict[str, Any] | None = None, engine: str = "local", address: str | None = None) -> dict[str, Any]:
    """Train ``folds`` of a split; each finished fold is written at once and reused on a re-run (resume)
    when it was trained with the same recipe (:func:`check_run`: else refused, or with ``overwrite`` retrained).

    With ``jobs`` > 1, folds run in parallel worker processes (each with cores // jobs torch threads); with
    ``engine="ray"``, each fold is a Ray task (see :func:`train_runs`).
    A failure in one fold is reported in the summary and does not lose the others.
    Writes ``run_dir/results.json`` (mean and std over the folds, per-fold figures) and returns it.
    """
    spec = RunSpec(model_name, split_dir, folds, model_config, cfg, run_dir, preprocess, about)
    return train_runs([spec], progress, on_fold, jobs, overwrite, engine, address)[0]


def train_runs(specs: Sequence[RunSpec], progress: bool = True, on_fold: Callable[[dict], None] | None = None,
               jobs: int = 1, overwrite: bool = False, engine: str = "local",
               address: str | None = None) -> list[dict[str, Any]]:
    """Train several runs (e.g. one per seed) as one pool of fold tasks, and return each run's summary
    (:func:`train_run` is the one-run case). Every run folder is checked (:func:`check_run`) before anything trains.

    ``engine="local"``: the folds in order in this process, or with ``jobs`` > 1 in that many worker processes.
    ``engine="ray"``: every fold of every run is a Ray task declaring ``cfg.threads`` CPUs (default 1, and that
    many torch threads) and, with ``--device cuda``, one GPU; it writes its fold folder itself, so run folders
    (and the data) must be on a path every node sees. A task whose worker dies is retried (``max_retries``); a
    fold that raises is reported like a local failure. ``address`` as ``ray.init`` takes it ($RAY_ADDRESS, a
    running ``ray start`` cluster, else a new local one).
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    for spec in specs:
        resolve_device(spec.cfg.device)  # a missing GPU is reported before any fold starts
    reusable = [check_run(s.model_name, s.split_dir, s.model_config, s.cfg, s.run_dir, s.preprocess, overwrite)
                for s in specs]
    started = time.perf_counter()
    results: list[dict[int, dict]] = [{} for _ in specs]
    failures: list[list[dict]] = [[] for _ in specs]
    todo: list[list[int]] = [[] for _ in specs]
    reused: list[list[int]] = [[] for _ in specs]
    tasks = []  # (run index, fold, arguments of _fold_task)
    for i, (spec, done) in enumerate(zip(specs, reusable)):
        run_dir = Path(spec.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for k in spec.folds:
            if k in done:
                results[i][k], how = done[k]
                reused[i].append(k)
                print(f"fold {k}: reusing {run_dir / f'fold{k}'} ({spec.model_name}, {Path(spec.split_dir).name}, {how})",
                      file=sys.stderr)
            else:
                todo[i].append(k)
                recipe = fold_recipe(spec.model_name, spec.split_dir, k, spec.model_config, spec.cfg, spec.preprocess)
                tasks.append((i, k, [spec.model_name, str(spec.split_dir), k, spec.model_config, spec.cfg,
                                     str(run_dir / f"fold{k}"), spec.preprocess, recipe, spec.about]))

    def finished(i: int, k: int, res: dict) -> None:
        results[i][k] = res
        if on_fold:
            on_fold(res)

    def failed(i: int, k: int, e: BaseException) -> None:
        log.error("fold %d failed: %s", k, e)
        failures[i].append({"fold": k, "error": f"{e.__class__.__name__}: {e}"})

    desc = f"{specs[0].model_name} folds" if specs else "folds"
    if engine == "ray":
        calls = []
        for i, k, args in tasks:
            cfg = copy.copy(args[4])
            cfg.threads = cfg.threads or 1  # one torch thread per declared CPU
            gpus = 1 if str(cfg.device).startswith("cuda") else 0
            calls.append(((i, k), (*args[:4], cfg, *args[5:]), {"num_cpus": cfg.threads, "num_gpus": gpus}))
        run_on_ray(_fold_task, calls, lambda key, res: finished(*key, res), lambda key, e: failed(*key, e),
                   address, progress, desc)
    elif jobs > 1 and len(tasks) > 1:
        with process_pool(jobs) as pool:
            futures = {}
            for i, k, args in tasks:
                worker_cfg = copy.copy(args[4])
                worker_cfg.threads = worker_cfg.threads or max(1, (os.cpu_count() or 1) // jobs)
                futures[pool.submit(_fold_task, *args[:4], worker_cfg, *args[5:])] = (i, k)
            for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress):
                try:
                    finished(*futures[fut], fut.result())
                except Exception as e:  # reported, finished folds kept
                    failed(*futures[fut], e)
    else:
        for i, k, args in tasks:
            spec = specs[i]
            try:
                res = train_fold(spec.model_name, load_fold(spec.split_dir, k), spec.model_config, spec.cfg,
                                 Path(args[5]), progress, spec.preprocess, args[7], spec.about)
            except (KeyboardInterrupt, FileNotFoundError, ECPEError):  # bad input: stop with a clear error
                raise
            except Exception as e:  # a failure in one fold is reported; finished folds are kept
                log.exception("fold %d failed", k)
                failures[i].append({"fold": k, "error": f"{e.__class__.__name__}: {e}"})
                continue
            finished(i, k, res)
    summaries = []
    for i, spec in enumerate(specs):
        per_fold = [results[i][k] for k in spec.folds if k in results[i]]
        summary = summarize(spec.model_name, Path(spec.split_dir).name, [f["fold"] for f in per_fold], spec.cfg,
                            spec.model_config, per_fold)
        if failures[i]:
            summary["failures"] = failures[i]
        # elapsed time of this invocation, for the folds it trained (folds reused from earlier ones excluded)
        summary["last_invocation"] = {"folds_trained": [k for k in todo[i] if k in results[i]],
                                      "folds_reused": reused[i], "jobs": jobs, "engine": engine,
                                      "elapsed_seconds": round(time.perf_counter() - started, 1)}
        (Path(spec.run_dir) / "results.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        summaries.append(summary)
    return summaries


# ---- one model on every document, for use ----------------------------------------------------------------
def final_fold(split_dir: str | Path) -> Fold:
    """Every document of a split once (the train, valid and test files of its first fold, which together hold
    the corpus), as a fold without test documents: :func:`train_fold` then selects the epoch on the seeded
    dev share of them (``TrainConfig.dev_fraction``) and reports no test figure."""
    fold = load_fold(split_dir, find_folds(split_dir)[0])
    docs, seen = [], set()
    for d in [*fold.train, *(fold.dev or []), *fold.test]:
        if d.doc_id not in seen:
            seen.add(d.doc_id)
            docs.append(d)
    return Fold(f"{Path(split_dir).name} (all documents)", 0, docs, [])


def train_final(model_name: str, split_dir: str | Path, model_config: dict[str, Any], cfg: TrainConfig,
                out_dir: str | Path, progress: bool = True, preprocess: dict | None = None,
                about: dict[str, Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train one model on every document of a split (:func:`final_fold`) into ``out_dir/model.pt``; refuses
    to replace a model there unless ``overwrite``."""
    out_dir = Path(out_dir)
    if (out_dir / "model.pt").exists() and not overwrite:
        raise RecipeMismatch(f"{out_dir} already holds a model.pt: use another --out, or --overwrite to replace it")
    return train_fold(model_name, final_fold(split_dir), model_config, cfg, out_dir, progress, preprocess,
                      about=about)
