"""One Trainer for every model, the training schedules that drive it, and the fold / run loops.

A fresh model and optimizer per fold, model selection on a dev set. The paper's own protocol (best epoch
chosen on the test fold) is available as ``select_on="test"`` and is labelled as such in every output.

Schedules (chosen by the model's ``schedule``, see :mod:`ecpe.models.base`):

- ``"single"`` (:func:`train_single_stage`): one Trainer over the whole model;
- ``"two-stage"`` (:func:`train_two_stage`): stage 1 (clause extraction), then candidate pairs from stage
  1's predictions, then stage 2 (the pair filter) on them.

Both return a :class:`History` of the same shape: every epoch tagged with its stage, and per-stage seconds.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .config import ConfigError, TrainConfig, from_dict, to_dict
from .data.corpus import Document, Fold, find_folds, load_fold
from .data.vocab import Vocab
from .devices import device_info, model_device, resolve_device
from .embeddings import (PART_DIM, SOURCES, concat_vectors, corpus_word2vec, embedding_matrix, read_word2vec, source_parts,
                         train_word2vec)
from .inference import evaluate, load_models, predict, predict_documents
from .lexicon import lexicon_classes, load_lexicon, word_features
from .resources import load_vectors
from .metrics import mean_std
from .models import MODELS, ECPEModel, build_model, migrate_config, model_class, pair_f1, save_model
from .models.two_stage import CandidateTensors, TwoStageECPE, evaluate_filter, mean_clause_f1

__all__ = ["Trainer", "History", "StageHistory", "train_single_stage", "train_two_stage", "SCHEDULES",
           "protocol_label", "carve_dev", "dev_split", "fold_seed", "train_fold", "train_run", "stage_seconds", "PROTOCOL_DEV",
           "PROTOCOL_PAPER", "SINGLE_STAGE", "predict", "evaluate", "RecipeMismatch", "fold_recipe", "check_run", "final_fold", "train_final", "NO_TEST"]

log = logging.getLogger(__name__)

PROTOCOL_DEV = "dev-selected"
PROTOCOL_PAPER = "paper: best epoch on test"
NO_TEST = "no test set: trained on all documents"
DEFAULT_PREPROCESS = {"segmenter": "jieba"}


def protocol_label(select_on: str) -> str:
    if select_on not in ("dev", "test"):
        raise ValueError(f"select_on must be 'dev' or 'test', got {select_on!r}")
    return PROTOCOL_DEV if select_on == "dev" else PROTOCOL_PAPER


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class StageHistory:
    """What :meth:`Trainer.fit` returns: the epochs of one stage and the best of them."""

    best_epoch: int = 0
    best_score: float = -1.0
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epoch_seconds(self) -> list[float]:
        return [e["seconds"] for e in self.epochs]


SINGLE_STAGE = "model"  # the stage name of a single-stage schedule


@dataclass
class History:
    """What every schedule returns: each epoch (tagged ``stage`` and ``best``) of each stage in order,
    the best epoch of each stage, and per-stage seconds per epoch."""

    best_epoch: int = 0                                      # of the last trained stage
    best_epochs: dict[str, int] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    stage_seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, h: StageHistory) -> None:
        self.epochs += [{"stage": stage, **e, "best": e["epoch"] == h.best_epoch} for e in h.epochs]
        self.stage_seconds[stage] = h.epoch_seconds
        self.best_epochs[stage] = self.best_epoch = h.best_epoch

    @property
    def epoch_seconds(self) -> list[float]:
        return [s for v in self.stage_seconds.values() for s in v]


def stage_seconds(result: dict[str, Any]) -> dict[str, list[float]]:
    """Per-stage seconds per epoch of a fold's result, also from a result.json written before the
    schema was one (``epoch_seconds``: a list for E2EECPE, a per-stage dict for two-stage models)."""
    if "stage_seconds" in result:
        return result["stage_seconds"]
    old = result.get("epoch_seconds") or []
    return dict(old) if isinstance(old, dict) else {SINGLE_STAGE: list(old)}


class _Optimizers:
    """Several optimizers stepped as one (dense Adam + lazy Adam for sparse embedding gradients)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()


def make_optimizer(groups: list[dict], lr: float) -> _Optimizers:
    """Adam over the dense groups; SparseAdam over groups flagged ``sparse`` (no weight decay there)."""
    dense = [{k: v for k, v in g.items() if k != "sparse"} for g in groups if not g.get("sparse")]
    sparse = [p for g in groups if g.get("sparse") for p in g["params"]]
    opts: list[torch.optim.Optimizer] = []
    if any(g["params"] for g in dense):
        # the fused kernel updates every tensor in one pass (4x faster than foreach on CPU, same arithmetic)
        fusable = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for g in dense for p in g["params"])
        opts.append(torch.optim.Adam(dense, lr=lr, fused=True) if fusable else torch.optim.Adam(dense, lr=lr, foreach=True))
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    return _Optimizers(opts)


class Trainer:
    """Trains one model, keeping the weights of the epoch that scores best on the selection set.

    With ``config.ema`` > 0 the weights scored after each epoch (and so kept) are an exponential moving
    average of the trained weights, updated after every step (``torch.optim.swa_utils.AveragedModel``);
    the optimizer goes on training the raw weights.

    Args:
        config: optimisation settings (epochs, patience, batch size, lr, l2, seed, ema).
        select_key: metrics -> number to maximise (pair F1 by default); its ``label`` attribute names it in
            the per-epoch line.
        progress: show tqdm bars.
        desc: prefix of progress lines (e.g. ``fold 3``).
    """

    def __init__(self, config: TrainConfig, select_key: Callable[[dict], float] = pair_f1, progress: bool = True,
                 desc: str = "", monitor=None):
        self.config, self.select_key, self.progress, self.desc = config, select_key, progress, desc
        self.monitor = monitor  # tensors scored after every epoch for the record only (never for selection)

    def fit(self, model, train, select, evaluate_fn: Callable = evaluate, select_name: str = "dev") -> StageHistory:
        """Train ``model`` (anything with ``forward``, ``loss`` and ``param_groups``: a model or one stage of
        it) on ``train`` batches, scoring ``select`` with ``evaluate_fn`` after every epoch.

        ``select=None`` (a refit, whose epoch count was chosen before): every epoch is trained, nothing is
        scored for selection, and the last epoch's weights (with ``ema``: their average) are kept."""
        cfg = self.config
        optimizer = make_optimizer(model.param_groups(cfg.l2), cfg.lr)
        history, best_state = StageHistory(), None
        bad = 0
        device = model_device(model)
        # parameters only are averaged: the models' buffers are constants (vocabulary tables, lexicon features)
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
        scored = ema.module if ema is not None else model
        n_batches = (len(train) + cfg.batch_size - 1) // cfg.batch_size
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            start, total, n = time.perf_counter(), 0.0, 0
            bar = tqdm(train.batches(cfg.batch_size, shuffle=True, seed=cfg.seed * 100003 + epoch), total=n_batches,
                       desc=f"{self.desc} epoch {epoch}/{cfg.epochs}".strip(), leave=False, disable=not self.progress)
            for batch in bar:
                batch = batch.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = model.loss(model(batch), batch)
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update_parameters(model)
                total, n = total + loss.item(), n + 1  # (on a GPU, .item() waits for the step: no queue builds up)
                if n % 10 == 0:
                    bar.set_postfix(loss=f"{total / n:.4f}")
            seconds = time.perf_counter() - start
            if select is None:
                history.best_epoch = epoch
                history.epochs.append({"epoch": epoch, "loss": total / max(n, 1), "seconds": seconds})
                if self.monitor is not None:
                    history.epochs[-1]["test"] = evaluate_fn(scored, self.monitor)
                line = f"{self.desc} epoch {epoch:2d} loss {total / max(n, 1):.4f} (refit) {seconds:.1f}s".strip()
                if self.progress:
                    tqdm.write(line)
                log.info(line)
                continue
            metrics = evaluate_fn(scored, select)
            key = self.select_key(metrics)
            improved = key > history.best_score
            if improved:
                history.best_score, history.best_epoch, bad = key, epoch, 0
                best_state = copy.deepcopy(scored.state_dict())
            else:
                bad += 1
            history.epochs.append({"epoch": epoch, "loss": total / max(n, 1), "seconds": seconds,
                                   f"{select_name}_score": key, select_name: metrics})
            if self.monitor is not None and self.monitor is not select:
                history.epochs[-1]["test"] = evaluate_fn(scored, self.monitor)
            line = (f"{self.desc} epoch {epoch:2d} loss {total / max(n, 1):.4f} {select_name} {self.select_key.label} {key:.4f} "
                    f"(best {history.best_score:.4f} @ {history.best_epoch}) {seconds:.1f}s").strip()
            if self.progress:
                tqdm.write(line)
            log.info(line)
            if bad >= cfg.patience:
                break
        if select is None and ema is not None:
            model.load_state_dict(ema.module.state_dict())
        elif best_state is not None:
            model.load_state_dict(best_state)
        return history


# ---- schedules --------------------------------------------------------------------------------------
def train_single_stage(model: ECPEModel, trainer: Trainer, train, select, select_name: str = "dev") -> History:
    """One Trainer over the whole model, selecting on ``model.select_key``."""
    history = History()
    history.add(SINGLE_STAGE, trainer.fit(model, train, select, select_name=select_name))
    return history


def train_two_stage(model: TwoStageECPE, trainer: Trainer, train, select, select_name: str = "dev") -> History:
    """Train stage 1, then stage 2 on stage 1's predictions for the training documents.

    ``trainer`` supplies the seed, threads, progress display, record-only test set (``monitor``) and the
    epoch cap (``config.epochs``); each stage runs its own :class:`Trainer` with the stage's epochs
    (at most ``config.epochs``), batch size and learning rate from the model's config, training every epoch
    and keeping the best one on the selection set (stage 1: mean emotion/cause F1; stage 2: pair F1).
    """
    c, cfg = model.config, trainer.config
    history = History()

    def run(stage: str, module, train_data, select_data, epochs: int, batch_size: int, lr: float,
            key: Callable, evaluate_fn: Callable, monitor=None) -> None:
        epochs = min(epochs, cfg.epochs)  # every epoch is trained (patience = epochs)
        stage_cfg = dataclasses.replace(cfg, epochs=epochs, patience=epochs, batch_size=batch_size, lr=lr, l2=c.l2)
        sub = Trainer(stage_cfg, select_key=key, progress=trainer.progress, desc=f"{trainer.desc} {stage}".strip(),
                      monitor=monitor)
        history.add(stage, sub.fit(module, train_data, select_data, evaluate_fn=evaluate_fn, select_name=select_name))

    def evaluate_clauses(module, tensors):
        m = evaluate(module, tensors)
        return {"emotion": m["emotion"], "cause": m["cause"]}

    run("stage1", model.stage1, train, select, c.stage1_epochs, c.stage1_batch_size, c.stage1_lr, mean_clause_f1,
        evaluate_clauses)
    if model.stage2 is not None:
        cand_train = CandidateTensors(train, predict(model.stage1, train, batch_size=200))
        cand_select = CandidateTensors(select, predict(model.stage1, select, batch_size=200))
        # the trainer's record-only test set (dev protocol) is followed through stage 2 only: its per-epoch
        # pair scores then rest on the dev-selected stage 1
        monitor = trainer.monitor
        cand_monitor = None if monitor is None else CandidateTensors(monitor, predict(model.stage1, monitor, batch_size=200))
        run("stage2", model.stage2, cand_train, cand_select, c.stage2_epochs, c.stage2_batch_size, c.stage2_lr, pair_f1,
            lambda module, tensors: evaluate_filter(module, tensors, c.threshold), cand_monitor)
    model.eval()
    return history


SCHEDULES: dict[str, Callable[..., History]] = {"single": train_single_stage, "two-stage": train_two_stage}


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


def carve_dev(docs: Sequence[Document], fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """Split training documents into (train, dev) with a seeded random ``fraction`` held out."""
    idx = list(range(len(docs)))
    random.Random(seed).shuffle(idx)
    n_dev = max(1, round(len(docs) * fraction)) if len(docs) > 1 else 0
    dev_ids = set(idx[:n_dev])
    return [d for i, d in enumerate(docs) if i not in dev_ids], [d for i, d in enumerate(docs) if i in dev_ids]


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed of everything random in one fold's training (torch, the dev share): ``seed * 1000 + fold index``."""
    return seed * 1000 + fold.index


def dev_split(fold: Fold, seed: int, fraction: float) -> tuple[list[Document], list[Document], str]:
    """(training documents, dev documents, where dev came from) of a fold as ``ecpe train`` selects on it: the
    fold's valid file (split20), else the seeded ``fraction`` of its training documents (:func:`carve_dev`).
    Benchmarks call it to rebuild a run's dev documents."""
    if fold.dev is not None:
        return list(fold.train), list(fold.dev), "valid file"
    train, dev = carve_dev(fold.train, fraction, fold_seed(seed, fold))
    return train, dev, f"seeded {fraction:.0%} of the training documents"


def word_vectors(cfg: TrainConfig, train_docs: Sequence[Document], fold_train: Sequence[Document], dim: int,
                 progress: bool = False) -> tuple[dict, dict[str, Any]]:
    """The fold's word vectors and where they came from (see :data:`ecpe.embeddings.SOURCES`; sources
    joined by ``+`` are concatenated per word, :func:`ecpe.embeddings.concat_vectors`).

    ``train_docs``: the documents the model trains on; ``fold_train``: the fold's whole training file
    (dev share included), which the ``corpus`` source adds to the packaged corpora. Never the test file.
    """
    source = cfg.embeddings or "train"
    parts = source_parts(source)
    found = [_source_vectors(p, cfg, train_docs, fold_train, dim if len(parts) == 1 else PART_DIM,
                             progress)
             for p in parts]
    if len(parts) == 1:
        vectors, info = found[0]
    else:
        vectors = concat_vectors([v for v, _ in found])
        info = {"source": source, "parts": [i for _, i in found], "vectors_dim": len(next(iter(vectors.values()))),
                "vocabulary": len(vectors)}
    vdim = len(next(iter(vectors.values()))) if vectors else dim
    if vdim > dim:
        raise ValueError(f"{source}: vectors have {vdim} dimensions but the model uses {dim}; pass --embed-dim {vdim}")
    return vectors, info


def _source_vectors(source: str, cfg: TrainConfig, train_docs: Sequence[Document], fold_train: Sequence[Document],
                    dim: int, progress: bool) -> tuple[dict, dict[str, Any]]:
    """One source of :func:`word_vectors` (word2vec sources train ``dim``-d vectors)."""
    info: dict[str, Any] = {"source": source}
    if source == "train":
        sentences = [c for d in train_docs for c in d.clauses]
        vectors = train_word2vec(sentences, dim=dim, seed=cfg.seed, epochs=cfg.w2v_epochs)
        info["source"] = "word2vec trained on the training documents"
    elif source == "corpus":
        # one worker: deterministic, so every run (any --jobs) shares the cached vectors of a fold
        vectors, facts = corpus_word2vec([c for d in fold_train for c in d.clauses], dim=dim,
                                         epochs=cfg.corpus_w2v_epochs, min_count=cfg.corpus_min_count,
                                         window=cfg.corpus_window, workers=1, progress=progress)
        info.update(facts, source="corpus: word2vec on packaged corpora + the fold's training file")
    elif source in SOURCES:
        words, matrix = load_vectors(source)
        vectors = dict(zip(words, matrix))
        info.update(vectors_dim=int(matrix.shape[1]), vocabulary=len(words))
    else:
        vectors, file_dim = read_word2vec(source)
        info.update(vectors_dim=file_dim, vocabulary=len(vectors))
    return vectors, info


def build_vocab(train_docs: Sequence[Document], cfg: TrainConfig, vectors: dict | None = None) -> Vocab:
    """The training documents' words (``cfg.min_freq``), then, with ``cfg.open_vocab``, words of the
    vectors that training never saw (in the vectors' order: most frequent first for word2vec)."""
    vocab = Vocab.build((c for d in train_docs for c in d.clauses), cfg.min_freq)
    if cfg.open_vocab and vectors:
        limit = None if cfg.open_vocab < 0 else cfg.open_vocab
        vocab.extend((w for w in vectors if w not in vocab), limit)
    return vocab


def build_embeddings(vocab: Vocab, dim: int, cfg: TrainConfig, vectors: dict, info: dict):
    """Initial word vectors (from :func:`word_vectors`): the matrix for ``vocab`` and facts about it
    (``info`` plus coverage of the training words and how many words came from the vectors only)."""
    matrix, hits = embedding_matrix(vocab, vectors, dim, seed=cfg.seed)
    n_train = sum(1 for c in vocab.counts if c > 0) if vocab.counts else len(vocab) - 2
    trained_hits = sum(1 for w in vocab.itos[2:2 + n_train] if w in vectors)
    return matrix, {**info, "coverage": trained_hits / max(n_train, 1),
                    "vocab_from_vectors": len(vocab) - 2 - n_train}


def set_teacher_targets(train_t, cfg: TrainConfig, fold_index: int, device) -> dict[str, Any]:
    """Distillation: the mean M-hat and auxiliary probabilities of the teachers (``cfg.teachers``: run
    folders, each with ``fold{K}/model.pt`` of the same fold) on the training documents, mixed with the
    gold labels by ``cfg.distill_weight``. Only training documents are scored: never dev or test."""
    paths = [Path(r) / f"fold{fold_index}" / "model.pt" for r in cfg.teachers]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"teacher model(s) not found: {', '.join(missing)}")
    teacher, _ = load_models(paths, device=device)
    preds = predict_documents(teacher, train_t.docs, keep_matrix=True)
    if any(p.emotion_prob is None for p in preds):
        raise ValueError("teachers must be E2EECPE models with auxiliary heads")
    train_t.set_soft_targets([torch.tensor(p.pair_prob) for p in preds],
                             torch.tensor([v for p in preds for v in p.emotion_prob]),
                             torch.tensor([v for p in preds for v in p.cause_prob]), cfg.distill_weight)
    return {"teachers": [str(p) for p in paths], "weight": cfg.distill_weight}


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
            raise ValueError("a model trained on all documents has no test fold to select on: use --select-on dev")
        protocol += f"; {NO_TEST}"
    device = resolve_device(cfg.device)
    wall_start = time.perf_counter()
    # denormal floats (tiny values in late epochs) slow CPU arithmetic 2-3x; flushing them to zero changes
    # no selected epoch or F1 measured (fold 1: 2.3 -> 6.0 s/epoch without, 2.4 -> 2.6 s with)
    torch.set_flush_denormal(True)
    seed_everything(fold_seed(cfg.seed, fold))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_docs, dev_docs, dev_source = dev_split(fold, cfg.seed, cfg.dev_fraction)
    dim = from_dict(model_class(model_name).config_class, model_config).embed_dim  # unknown keys: ConfigError

    def fresh_model(docs: Sequence[Document]):
        """A new model whose vocabulary (and, for "train" vectors, word2vec) comes from ``docs``."""
        vectors, vec_info = word_vectors(cfg, docs, fold.train, dim, progress=progress)
        vocab = build_vocab(docs, cfg, vectors)
        matrix, emb_info = build_embeddings(vocab, dim, cfg, vectors, vec_info)
        resources = {}
        if model_config.get("lexicon"):
            lexicon = load_lexicon(model_config["lexicon"])
            resources["lexicon_features"] = word_features(vocab, lexicon, len(lexicon_classes(model_config["lexicon"])))
            emb_info["lexicon"] = {"name": model_config["lexicon"], "words": len(lexicon),
                                   "vocab_words_in_lexicon": int((resources["lexicon_features"].sum(1) > 0).sum())}
        return build_model(model_name, vocab, model_config, matrix, **resources).to(device), vocab, emb_info

    model, vocab, emb_info = fresh_model(train_docs)
    train_t, dev_t = model.tensorize(train_docs), model.tensorize(dev_docs)
    test_t = model.tensorize(fold.test) if has_test else None
    if cfg.teachers:
        distill_info = set_teacher_targets(train_t, cfg, fold.index, device)
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
        **({"distillation": distill_info} if cfg.teachers else {}),
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
        tmp = out_dir / "result.json.tmp"
        tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1))
        tmp.replace(out_dir / "result.json")
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


# ---- what a fold was trained with, and when a finished fold may be reused -------------------------
# TrainConfig fields that say where and how fast a fold trains, not what it trains (another device or thread
# count may round floats otherwise: the same recipe, run elsewhere)
RECIPE_IGNORED = ("threads", "device")
_FOLD_DIR = re.compile(r"fold(\d+)")


class RecipeMismatch(ValueError):
    """A run folder holds finished folds trained with other settings than the ones asked for."""


def _data_hash(split_dir: str | Path, k: int) -> str | None:
    """sha256 of the contents of fold ``k``'s files (train, test and the valid file :func:`load_fold`
    reads), not of their paths; None when the fold's train or test file is absent."""
    split_dir = Path(split_dir)
    files = [split_dir / f"fold{k}_{role}.txt" for role in ("train", "test")]
    if not all(p.is_file() for p in files):
        return None
    files += [p for role in ("valid", "val", "dev") if (p := split_dir / f"fold{k}_{role}.txt").is_file()][:1]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.split("_", 1)[1].encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def train_recipe(train_config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in train_config.items() if k not in RECIPE_IGNORED}


def fold_recipe(model_name: str, split_dir: str | Path, k: int, model_config: dict[str, Any], cfg: TrainConfig,
                preprocess: dict[str, Any] | None = None) -> dict[str, Any]:
    """What fold ``k`` is trained with (as JSON data): model, split, data hash, normalised model config,
    train config (less :data:`RECIPE_IGNORED`) and preprocessing."""
    config = to_dict(from_dict(model_class(model_name).config_class, model_config))
    return json.loads(json.dumps({"split": Path(split_dir).name, "data": _data_hash(split_dir, k), "model": model_name,
                                  "model_config": config, "train": train_recipe(to_dict(cfg)),
                                  "preprocess": dict(preprocess or DEFAULT_PREPROCESS)}))


def _checkpoint_recipe(fold_dir: Path) -> dict[str, Any]:
    """The recipe fields a fold's model.pt records (no data hash), for a result.json written without a
    recipe; ValueError saying why when it cannot tell."""
    path = fold_dir / "model.pt"
    if not path.is_file():
        raise ValueError(f"no {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        name, meta = ckpt["model"], ckpt["meta"]
        config = migrate_config(name, ckpt["config"], int(ckpt.get("config_version", 1)))
        train = {**to_dict(TrainConfig()), **meta["train_config"]}  # fields added later: their defaults
        return json.loads(json.dumps({"split": meta["split"], "model": name,
                                      "model_config": to_dict(from_dict(model_class(name).config_class, config)),
                                      "train": train_recipe(train), "preprocess": dict(ckpt["preprocess"])}))
    except Exception as e:
        raise ValueError(f"{path}: {e.__class__.__name__}: {e}") from None


def recorded_recipe(old: dict[str, Any]) -> dict[str, Any]:
    """A recipe written by earlier code in today's terms: model config keys since removed, at the value that
    meant the paper's model, are dropped (:func:`ecpe.models.migrate_config` from version 2; any other value
    stays, and differs); so is the train config's empty ``extra`` (removed, never read)."""
    old = dict(old)
    if isinstance(old.get("model_config"), dict) and old.get("model") in MODELS:
        try:
            old["model_config"] = migrate_config(old["model"], old["model_config"], 2)
        except ConfigError:
            pass
    if isinstance(old.get("train"), dict) and old["train"].get("extra") == {}:
        old["train"] = {k: v for k, v in old["train"].items() if k != "extra"}
    return old


def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def recipe_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"setting old -> new"`` for each setting of ``new`` that ``old`` records otherwise (settings ``old``
    lacks are not compared; the model config is not listed when the model itself differs)."""
    out = []
    for key, value in new.items():
        if key not in old or old[key] == value:
            continue
        if key == "data":
            out.append(f"fold files sha256 {str(old[key])[:8]} -> {str(value)[:8]}")
        elif key == "model_config" and old.get("model") != new.get("model"):
            continue
        elif isinstance(value, dict) and isinstance(old[key], dict):
            out += [f"{f} {_show(old[key].get(f, '(unset)'))} -> {_show(value.get(f, '(unset)'))}"
                    for f in [*value, *(f for f in old[key] if f not in value)] if old[key].get(f) != value.get(f)]
        else:
            out.append(f"{key} {_show(old[key])} -> {_show(value)}")
    return out


def check_run(model_name: str, split_dir: str | Path, model_config: dict[str, Any], cfg: TrainConfig,
              run_dir: str | Path, preprocess: dict | None = None,
              overwrite: bool = False) -> dict[int, tuple[dict, str]]:
    """The finished folds of ``run_dir`` (every ``foldK/result.json``, requested or not) that may be reused:
    fold number -> (result, how its recipe was found equal). A fold whose recipe (or, for a result.json
    without one, what its model.pt records) differs from the one asked for raises :class:`RecipeMismatch`,
    before anything is trained; with ``overwrite`` such folds are deleted instead (said on stderr)."""
    run_dir = Path(run_dir)
    reusable: dict[int, tuple[dict, str]] = {}
    differing: list[tuple[Path, str]] = []
    found = [(int(m.group(1)), p) for p in run_dir.glob("fold*/result.json")
             if (m := _FOLD_DIR.fullmatch(p.parent.name))]
    for k, done in sorted(found):
        want = fold_recipe(model_name, split_dir, k, model_config, cfg, preprocess)
        try:
            res = json.loads(done.read_text())
            if "recipe" in res:
                old, how = res["recipe"], "same recipe"
            else:
                old, how = _checkpoint_recipe(done.parent), "same settings as its model.pt records"
        except ValueError as e:
            differing.append((done.parent, f"records no settings in result.json and its model.pt cannot tell "
                                           f"them ({e})"))
            continue
        diffs = recipe_differences(recorded_recipe(old), want)
        if diffs:
            differing.append((done.parent, f"was trained with other settings ({', '.join(diffs)})"))
        else:
            reusable[k] = (res, how)
    if differing and not overwrite:
        (first, why), others = differing[0], [str(d) for d, _ in differing[1:]]
        raise RecipeMismatch(f"{first} {why}" + (f"; also differing: {', '.join(others)}" if others else "")
                             + "; use a new --out, or --overwrite to delete the differing folds and train them anew")
    for d, why in differing:
        print(f"--overwrite: deleting {d}, which {why}", file=sys.stderr)
        shutil.rmtree(d)
    if differing:
        (run_dir / "results.json").unlink(missing_ok=True)
    return reusable


def train_run(model_name: str, split_dir: str | Path, folds: list[int], model_config: dict[str, Any], cfg: TrainConfig,
              run_dir: str | Path, progress: bool = True, preprocess: dict | None = None,
              on_fold: Callable[[dict], None] | None = None, jobs: int = 1, overwrite: bool = False,
              about: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``folds`` of a split; each finished fold is written at once and reused on a re-run (resume)
    when it was trained with the same recipe (:func:`check_run`: else refused, or with ``overwrite`` retrained).

    With ``jobs`` > 1, folds run in parallel worker processes (each with cores // jobs torch threads).
    A failure in one fold is reported in the summary and does not lose the others.
    Writes ``run_dir/results.json`` (mean and std over the folds, per-fold figures) and returns it.
    """
    resolve_device(cfg.device)  # a missing GPU is reported before any fold starts
    run_dir = Path(run_dir)
    done = check_run(model_name, split_dir, model_config, cfg, run_dir, preprocess, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    split = Path(split_dir).name
    started = time.perf_counter()
    results: dict[int, dict] = {}
    failures = []
    todo, reused = [], []
    for k in folds:
        if k in done:
            results[k], how = done[k]
            reused.append(k)
            print(f"fold {k}: reusing {run_dir / f'fold{k}'} ({model_name}, {split}, {how})", file=sys.stderr)
        else:
            todo.append(k)
    recipes = {k: fold_recipe(model_name, split_dir, k, model_config, cfg, preprocess) for k in todo}

    def finished(k, res):
        results[k] = res
        if on_fold:
            on_fold(res)

    if jobs > 1 and len(todo) > 1:
        worker_cfg = copy.copy(cfg)
        worker_cfg.threads = cfg.threads or max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_fold_task, model_name, str(split_dir), k, model_config, worker_cfg,
                                   run_dir / f"fold{k}", preprocess, recipes[k], about): k for k in todo}
            for fut in tqdm(as_completed(futures), total=len(futures), desc=f"{model_name} folds", disable=not progress):
                k = futures[fut]
                try:
                    finished(k, fut.result())
                except Exception as e:  # reported, finished folds kept
                    log.error("fold %d failed: %s", k, e)
                    failures.append({"fold": k, "error": f"{e.__class__.__name__}: {e}"})
    else:
        for k in todo:
            try:
                res = train_fold(model_name, load_fold(split_dir, k), model_config, cfg, run_dir / f"fold{k}",
                                 progress, preprocess, recipes[k], about)
            except (KeyboardInterrupt, FileNotFoundError, ValueError):  # bad input: stop with a clear error
                raise
            except Exception as e:  # a failure in one fold is reported; finished folds are kept
                log.exception("fold %d failed", k)
                failures.append({"fold": k, "error": f"{e.__class__.__name__}: {e}"})
                continue
            finished(k, res)
    per_fold = [results[k] for k in folds if k in results]
    summary = summarize(model_name, split, [f["fold"] for f in per_fold], cfg, model_config, per_fold)
    if failures:
        summary["failures"] = failures
    # elapsed time of this invocation, for the folds it trained (folds reused from earlier ones excluded)
    summary["last_invocation"] = {"folds_trained": [k for k in todo if k in results], "folds_reused": reused,
                                  "jobs": jobs, "elapsed_seconds": round(time.perf_counter() - started, 1)}
    (run_dir / "results.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    return summary


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
