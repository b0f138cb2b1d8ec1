"""Ensembles: several trained E2EECPE models (for example one per seed) whose probabilities are averaged.

Each member reads the documents through its own vocabulary; the ensemble averages, per document, the pair
matrix M-hat = sigmoid(M) * A (eqs. 8-10), the emotion probabilities and the cause probabilities, then
decodes as one model does: pairs where the mean M-hat > eta (eq. 18), emotions and causes where the mean
probability > 1/2. Test documents are never used to build it: each member is selected on its own dev set.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.corpus import Document, find_folds, read_documents
from ..metrics import Prediction, mean_std, score
from ..models import ECPEModel, load_model
from ..significance import paired_ttest
from .core import decode_batches, evaluate, predict_docs, set_precision

__all__ = ["Ensemble", "predict_documents", "for_inference", "load_models", "evaluate_runs", "set_clauses"]


class Ensemble:
    """Average the predictions of several E2EECPE models.

    Args:
        models: trained models (E2EECPE with the auxiliary heads; two-stage models are refused, their
            candidate pairs cannot be averaged). The first member's threshold is the default.
    """

    name = "ensemble"

    def __init__(self, models: Sequence[torch.nn.Module]):
        self.models = list(models)
        if not self.models:
            raise ValueError("an ensemble needs at least one model")
        for m in self.models:
            if not isinstance(m, ECPEModel) or not m.averageable:
                name = m.name if isinstance(m, ECPEModel) else type(m).__name__
                raise ValueError(f"ensembles average E2EECPE models with auxiliary heads; got {name!r}"
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

    def predict_docs(self, docs: Sequence[Document], threshold: float | None = None, keep_matrix: bool = False,
                     batch_size: int = 64) -> list[Prediction]:
        """Predictions for ``docs`` from the members' mean probabilities."""
        eta = self.config.threshold if threshold is None else threshold
        # every member's full M-hat and clause probabilities, per document (float64: the mean is taken in it)
        per_model = []
        for m in self.models:
            mats: list[Any] = [None] * len(docs)
            emo: list[Any] = [None] * len(docs)
            cau: list[Any] = [None] * len(docs)
            for batch, d in decode_batches(m, m.tensorize(docs), batch_size=batch_size):
                probs, ep, cp = (t.detach().to("cpu", torch.float64).numpy() for t in
                                 (d.pair_prob, d.emotion_prob, d.cause_prob))
                for b, (i, n) in enumerate(zip(batch.index, d.doc_lens.tolist())):
                    mats[i], emo[i], cau[i] = probs[b, :n, :n], ep[b, :n], cp[b, :n]
            per_model.append((mats, emo, cau))
        out = []
        for i, doc in enumerate(docs):
            n = len(doc.clauses)
            matrix = np.mean([mats[i].reshape(n, n) for mats, _, _ in per_model], axis=0)
            ep = np.mean([emo[i] for _, emo, _ in per_model], axis=0).reshape(n)
            cp = np.mean([cau[i] for _, _, cau in per_model], axis=0).reshape(n)
            rows, cols = np.nonzero(matrix > eta)  # row-major, as a single model's decode
            pairs = [(int(r), int(c), float(matrix[r, c])) for r, c in zip(rows, cols)]
            emotions, causes = set(np.nonzero(ep > 0.5)[0].tolist()), set(np.nonzero(cp > 0.5)[0].tolist())
            if self.config.clauses == "heads+pairs":  # members are E2EECPE models (averageable)
                emotions, causes = emotions | set(rows.tolist()), causes | set(cols.tolist())
            out.append(Prediction(pairs, sorted(emotions), sorted(causes), ep.tolist(), cp.tolist(),
                                  matrix.tolist() if keep_matrix else None))
        return out

    def evaluate(self, docs: Sequence[Document], threshold: float | None = None) -> dict[str, dict[str, float]]:
        """Pair / emotion / cause P/R/F1 on gold documents."""
        return score(docs, self.predict_docs(docs, threshold))


def predict_documents(model, docs: Sequence[Document], threshold: float | None = None, keep_matrix: bool = False,
                      batch_size: int = 64) -> list[Prediction]:
    """Predictions for ``docs`` from one model or an :class:`Ensemble` (in their order)."""
    if isinstance(model, Ensemble):
        return model.predict_docs(docs, threshold=threshold, keep_matrix=keep_matrix, batch_size=batch_size)
    return predict_docs(model, docs, threshold=threshold, keep_matrix=keep_matrix, batch_size=batch_size)


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
        raise ValueError("no model file given")
    loaded = [load_model(p, device=device) for p in paths]
    models = [m for m, _ in loaded]
    return (for_inference(models[0] if len(models) == 1 else Ensemble(models), precision),
            [ckpt for _, ckpt in loaded])


def set_clauses(model, rule: str) -> None:
    """Make a model, or every member of an :class:`Ensemble`, report emotion / cause clauses by ``rule``
    (E2EECPE's ``clauses``: "heads" or "heads+pairs"). ValueError for a model without that setting."""
    for m in (model.models if isinstance(model, Ensemble) else [model]):
        if not hasattr(m.config, "clauses"):
            raise ValueError(f"the clause rule applies to e2eecpe models, not {type(m).__name__}")
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
