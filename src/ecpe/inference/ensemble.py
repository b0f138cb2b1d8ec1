"""Ensembles: several trained E2EECPE models (for example one per seed) whose probabilities are averaged.

Each member reads the documents through its own vocabulary; the ensemble averages the pair matrix
M-hat = sigmoid(M) * A (eqs. 8-10), the emotion probabilities and the cause probabilities, then decodes as
one model does: pairs where the mean M-hat > eta (eq. 18), emotions and causes where the mean probability
> 1/2. :class:`Ensemble` has the model contract's ``tensorize`` / ``chunk_tensors`` / ``forward`` /
``decode``, so every prediction path (:func:`~ecpe.inference.predict_documents`,
:func:`~ecpe.inference.arrays.predict_chunk`) runs it as it runs one model. Test documents are never used
to build it: each member is selected on its own dev set.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ..errors import UsageError
from ..data.batching import DocBatch
from ..data.corpus import Document, find_folds, read_documents
from ..devices import model_device
from ..metrics import mean_std, score
from ..models import ECPEModel, load_model
from ..models.base import Decoded, add_pair_clauses
from ..significance import paired_ttest
from .core import evaluate, predict_docs, scores_of, set_precision

__all__ = ["Ensemble", "EnsembleBatch", "EnsembleTensors", "for_inference", "load_models", "evaluate_runs",
           "set_clauses"]


@dataclass
class EnsembleBatch:
    """The same documents batched once per member (each through its own vocabulary). ``mask``,
    ``doc_lens`` and ``index`` are the first member's: every member's batch holds the same documents."""

    members: list[DocBatch]

    @property
    def mask(self) -> torch.Tensor:
        return self.members[0].mask

    @property
    def doc_lens(self) -> torch.Tensor:
        return self.members[0].doc_lens

    @property
    def index(self) -> list[int]:
        return self.members[0].index

    @property
    def batch_size(self) -> int:
        return len(self.members[0].doc_lens)

    def to(self, device: torch.device | str) -> "EnsembleBatch":
        return EnsembleBatch([b.to(device) for b in self.members])


class EnsembleTensors:
    """Each member's tensors of the same documents; ``length_batches`` zips the members' batches (the
    documents are sorted by length the same way for every member, so their batches line up)."""

    def __init__(self, members: Sequence[Any]):
        self.members = list(members)

    def __len__(self) -> int:
        return len(self.members[0])

    @property
    def docs(self) -> list[Document]:
        return self.members[0].docs

    def length_batches(self, batch_size: int) -> Iterator[EnsembleBatch]:
        for batches in zip(*(t.length_batches(batch_size) for t in self.members)):
            if any(b.index != batches[0].index for b in batches):
                raise RuntimeError("the members' batches hold different documents")
            yield EnsembleBatch(list(batches))


class Ensemble:
    """Average the predictions of several E2EECPE models.

    Args:
        models: trained models (E2EECPE with the auxiliary heads; two-stage models are refused, their
            candidate pairs cannot be averaged). The first member's threshold and clause rule are the
            ensemble's.
    """

    name = "ensemble"

    def __init__(self, models: Sequence[torch.nn.Module]):
        self.models = list(models)
        if not self.models:
            raise UsageError("an ensemble needs at least one model")
        for m in self.models:
            if not isinstance(m, ECPEModel) or not m.averageable:
                name = m.name if isinstance(m, ECPEModel) else type(m).__name__
                raise UsageError(f"ensembles average E2EECPE models with auxiliary heads; got {name!r}"
                                 + (" without them" if name == "e2eecpe" else ""))
        self.config = self.models[0].config

    def __len__(self) -> int:
        return len(self.models)

    def eval(self) -> "Ensemble":
        for m in self.models:
            m.eval()
        return self

    def to(self, device) -> "Ensemble":
        for m in self.models:
            m.to(device)
        return self

    def parameters(self):
        for m in self.models:
            yield from m.parameters()

    def buffers(self):
        for m in self.models:
            yield from m.buffers()

    # ---- the model contract's prediction half ------------------------------------------------------
    def tensorize(self, docs: Sequence[Document]) -> EnsembleTensors:
        return EnsembleTensors([m.tensorize(docs) for m in self.models])

    def chunk_tensors(self, docs: Sequence[Sequence[Sequence[str]]]) -> EnsembleTensors:
        return EnsembleTensors([m.chunk_tensors(docs) for m in self.models])

    @torch.no_grad()
    def forward(self, batch: EnsembleBatch) -> dict[str, torch.Tensor]:
        """The members' M-hat, emotion and cause probabilities, each member run in its own precision
        (:func:`~ecpe.inference.scores_of`) on its own device, averaged in float64 on the device of
        ``batch`` (members added in order, then divided by their number)."""
        device = batch.mask.device
        total: list[torch.Tensor] = []
        for m, b in zip(self.models, batch.members):
            b = b.to(model_device(m))
            d = m.decode(scores_of(m, b), b)
            probs = [t.to(device, torch.float64) for t in (d.pair_prob, d.emotion_prob, d.cause_prob)]
            total = probs if not total else [a + p for a, p in zip(total, probs)]
        n = len(self.models)
        return {"pair_prob": total[0] / n, "emotion_prob": total[1] / n, "cause_prob": total[2] / n}

    __call__ = forward

    @torch.no_grad()
    def decode(self, scores: dict[str, torch.Tensor], batch: EnsembleBatch, threshold: float | None = None) -> Decoded:
        """As E2EECPE decodes: pairs where the mean M-hat > eta (inside the documents, row-major), emotions
        and causes where the mean probability > 1/2 (with ``clauses="heads+pairs"`` also the clauses of
        every pair)."""
        eta = self.config.threshold if threshold is None else threshold
        probs, ep, cp = scores["pair_prob"], scores["emotion_prob"], scores["cause_prob"]
        mask = batch.mask
        pairs = ((probs > eta) & mask[:, :, None] & mask[:, None, :]).nonzero()   # [K, 3]
        emotions, causes = (ep > 0.5) & mask, (cp > 0.5) & mask
        if self.config.clauses == "heads+pairs":  # members are E2EECPE models (averageable)
            add_pair_clauses(emotions, causes, pairs)
        return Decoded(batch.doc_lens, pairs, probs[pairs.unbind(1)], emotions, causes, ep, cp, probs)

    def evaluate(self, docs: Sequence[Document], threshold: float | None = None) -> dict[str, dict[str, float]]:
        """Pair / emotion / cause P/R/F1 on gold documents."""
        return score(docs, predict_docs(self, docs, threshold))


def for_inference(model, precision: str | None = None):
    """Turn on the inference-only speed-ups of a model or of an ensemble's members
    (:meth:`ecpe.models.ECPEModel.prepare_for_inference`) and, when given, the inference precision
    (:func:`ecpe.inference.set_precision`: fp32 or bf16). Returns ``model``."""
    for m in (model.models if isinstance(model, Ensemble) else [model]):
        m.prepare_for_inference()
    return model if precision is None else set_precision(model, precision)


def load_models(paths: Sequence[str | Path], device=None, precision: str | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Load model files onto ``device``, ready for inference (:func:`for_inference`, in ``precision``): one
    file gives its model, several an :class:`Ensemble` of them. Returns (model or ensemble, the checkpoint
    dict of each file)."""
    if not paths:
        raise UsageError("no model file given")
    loaded = [load_model(p, device=device) for p in paths]
    models = [m for m, _ in loaded]
    return (for_inference(models[0] if len(models) == 1 else Ensemble(models), precision),
            [ckpt for _, ckpt in loaded])


def set_clauses(model, rule: str) -> None:
    """Make a model, or every member of an :class:`Ensemble`, report emotion / cause clauses by ``rule``
    (E2EECPE's ``clauses``: "heads" or "heads+pairs"). ValueError for a model without that setting."""
    for m in (model.models if isinstance(model, Ensemble) else [model]):
        if not hasattr(m.config, "clauses"):
            raise UsageError(f"the clause rule applies to e2eecpe models, not {type(m).__name__}")
        m.config.clauses = rule


def evaluate_runs(run_dirs: Sequence[str | Path], split_dir: str | Path, folds: Sequence[int] | None = None,
                  progress: bool = False, clauses: str | None = None) -> dict[str, Any]:
    """Score, on each fold's test documents, the models of several run folders (one per seed, each holding
    ``foldK/model.pt``) one by one and averaged as an ensemble; ``clauses`` (E2EECPE's "heads" or
    "heads+pairs") overrides the models' own rule for the emotion and cause lists.

    Returns ``per_fold`` ({fold, members: [metrics per run], ensemble: metrics}), and ``mean`` / ``std`` over
    folds of the ensemble and of the members' mean F1, with a paired t-test over folds (``ttest_p``).
    """
    split_dir = Path(split_dir)
    runs = [Path(r) for r in run_dirs]
    available = [k for k in (folds or find_folds(split_dir)) if all((r / f"fold{k}" / "model.pt").exists() for r in runs)]
    per_fold, protocols = [], set()
    for k in available:
        test = read_documents(split_dir / f"fold{k}_test.txt")
        members = []
        for r in runs:
            model, ckpt = load_model(r / f"fold{k}" / "model.pt")
            protocols.add(ckpt.get("meta", {}).get("protocol", "?"))
            if clauses is not None:
                set_clauses(model, clauses)
            members.append(model)
        single = [evaluate(m, m.tensorize(test)) for m in members]
        per_fold.append({"fold": k, "members": single, "ensemble": Ensemble(members).evaluate(test)})
        if progress:
            print(f"fold {k}: pair F1 members " + " ".join(f"{s['pair']['f1']:.4f}" for s in single)
                  + f" | ensemble {per_fold[-1]['ensemble']['pair']['f1']:.4f}", flush=True)
    out: dict[str, Any] = {"runs": [str(r) for r in runs], "split": split_dir.name, "folds": available,
                           "member_protocol": ", ".join(sorted(protocols)), "per_fold": per_fold}
    if clauses is not None:
        out["clauses"] = clauses
    if per_fold:
        out["mean"], out["std"] = mean_std([{**f["ensemble"], "fold": f["fold"]} for f in per_fold])
        tasks = ("pair", "emotion", "cause")
        member_mean = {t: [statistics.fmean(m[t]["f1"] for m in f["members"]) for f in per_fold] for t in tasks}
        out["members_mean_f1"] = {t: statistics.fmean(v) for t, v in member_mean.items()}
        out["members_f1"] = {t: [statistics.fmean(f["members"][i][t]["f1"] for f in per_fold) for i in range(len(runs))]
                             for t in tasks}
        if len(per_fold) > 1:
            out["ttest_p"] = {t: paired_ttest([f["ensemble"][t]["f1"] for f in per_fold], member_mean[t]).p
                              for t in tasks}
    return out
