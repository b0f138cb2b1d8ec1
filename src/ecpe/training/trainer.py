"""One Trainer for every model: epochs over shuffled batches, the best epoch on a selection set (early
stopping with patience), optional EMA weights, and the :class:`History` every schedule returns; the protocol
labels that name how the epoch was chosen."""
from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..errors import UsageError
from ..config import TrainConfig
from ..devices import model_device
from ..inference import evaluate
from ..models import pair_f1

log = logging.getLogger(__name__)


PROTOCOL_DEV = "dev-selected"

PROTOCOL_PAPER = "paper: best epoch on test"

NO_TEST = "no test set: trained on all documents"

def protocol_label(select_on: str) -> str:
    if select_on not in ("dev", "test"):
        raise UsageError(f"select_on must be 'dev' or 'test', got {select_on!r}")
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


def _float32(scores):
    """A forward's scores (a tensor, or a dict of them) with floating-point tensors in float32."""
    if isinstance(scores, dict):
        return {k: _float32(v) for k, v in scores.items()}
    if isinstance(scores, torch.Tensor) and scores.is_floating_point() and scores.dtype != torch.float32:
        return scores.float()
    return scores


class RowSparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` with the same arithmetic (same results bit for bit, same state), applied to
    the rows a gradient touches by row index instead of through sparse tensors: adding a sparse update to
    the dense state passes over the whole table (three times a step, 3.5 ms a step for a 21,666 x 200
    embedding on this CPU: 4 % of an epoch), where reading and writing the touched rows costs their size."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            eps, lr = group["eps"], float(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                grad = (-p.grad if group.get("maximize", False) else p.grad).coalesce()  # rows made unique
                values = grad._values()
                if values.numel() == 0:
                    continue
                rows = grad._indices()[0]
                exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
                # old <- old + (1 - b) * (new - old), on the touched rows only
                old_avg = exp_avg.index_select(0, rows)
                avg = values.sub(old_avg).mul_(1 - beta1).add_(old_avg)
                old_sq = exp_avg_sq.index_select(0, rows)
                sq = values.pow(2).sub_(old_sq).mul_(1 - beta2).add_(old_sq)
                exp_avg.index_copy_(0, rows, avg)
                exp_avg_sq.index_copy_(0, rows, sq)
                denom = sq.sqrt_().add_(eps)
                step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                p.index_add_(0, rows, -step_size * avg.div_(denom))
        return loss


def make_optimizer(groups: list[dict], lr: float) -> _Optimizers:
    """Adam over the dense groups; SparseAdam (:class:`RowSparseAdam`) over groups flagged ``sparse`` (no
    weight decay there)."""
    dense = [{k: v for k, v in g.items() if k != "sparse"} for g in groups if not g.get("sparse")]
    sparse = [p for g in groups if g.get("sparse") for p in g["params"]]
    opts: list[torch.optim.Optimizer] = []
    if any(g["params"] for g in dense):
        # the fused kernel updates every tensor in one pass (4x faster than foreach on CPU, same arithmetic)
        fusable = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for g in dense for p in g["params"])
        opts.append(torch.optim.Adam(dense, lr=lr, fused=True) if fusable else torch.optim.Adam(dense, lr=lr, foreach=True))
    if sparse:
        opts.append(RowSparseAdam(sparse, lr=lr))
    return _Optimizers(opts)


class Trainer:
    """Trains one model, keeping the weights of the epoch that scores best on the selection set.

    With ``config.ema`` > 0 the weights scored after each epoch (and so kept) are an exponential moving
    average of the trained weights, updated after every step (``torch.optim.swa_utils.AveragedModel``);
    the optimizer goes on training the raw weights.

    With ``config.precision == "bf16"`` each training forward pass runs under ``torch.autocast`` to bfloat16
    (matrix products, convolutions and the LSTM in bfloat16; the weights, the loss, the gradients' updates
    and the scoring of the selection set stay float32). It is faster on CPUs with AVX-512 BF16 / AMX and
    on GPUs, and changes the numerics but not the accuracy (split10, 10 folds: docs/accuracy.md); opt-in.

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
        low_precision = cfg.precision == "bf16"
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            start, total, n = time.perf_counter(), 0.0, 0
            bar = tqdm(train.batches(cfg.batch_size, shuffle=True, seed=cfg.seed * 100003 + epoch), total=n_batches,
                       desc=f"{self.desc} epoch {epoch}/{cfg.epochs}".strip(), leave=False, disable=not self.progress)
            for batch in bar:
                batch = batch.to(device)
                optimizer.zero_grad(set_to_none=True)
                if low_precision:
                    # the forward's products in bfloat16, its scores back in float32 for the loss
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        scores = model(batch)
                    loss = model.loss(_float32(scores), batch)
                else:
                    loss = model.loss(model(batch), batch)
                weight = getattr(batch, "loss_weight", 1.0)  # transfer batches of a student (training.student)
                if weight != 1.0:
                    loss = loss * weight
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
