"""The training schedules, chosen by a model's ``schedule`` (see :mod:`ecpe.models.base`):

- ``"single"`` (:func:`train_single_stage`): one Trainer over the whole model;
- ``"two-stage"`` (:func:`train_two_stage`): stage 1 (clause extraction), then candidate pairs from stage
  1's predictions, then stage 2 (the pair filter) on them.

Both return a :class:`~ecpe.training.trainer.History` of the same shape: every epoch tagged with its stage, and
per-stage seconds.
"""
from __future__ import annotations

import dataclasses
from typing import Callable


from ..inference import evaluate, predict
from ..models import ECPEModel, pair_f1
from ..models.two_stage import CandidateTensors, TwoStageECPE, evaluate_filter, mean_clause_f1
from .trainer import SINGLE_STAGE, History, Trainer


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
