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

from .data.corpus import Document
from .metrics import Prediction, score

__all__ = ["Ensemble", "predict_documents", "for_inference", "load_models", "evaluate_runs"]


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
            if getattr(m, "name", None) != "e2eecpe" or not m.config.use_aux:
                raise ValueError(f"ensembles average E2EECPE models with auxiliary heads; got {getattr(m, 'name', m)!r}"
                                 + ("" if getattr(m, "name", None) != "e2eecpe" else " without them"))
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
        from .training import predict

        eta = self.config.threshold if threshold is None else threshold
        # every member's full M-hat; the threshold is applied to the mean
        per_model = [predict(m, m.tensorize(docs), batch_size=batch_size, threshold=1.0, keep_matrix=True)
                     for m in self.models]
        out = []
        for i, doc in enumerate(docs):
            preds = [p[i] for p in per_model]
            n = len(doc.clauses)
            matrix = np.mean([np.asarray(p.pair_prob, dtype=np.float64).reshape(n, n) for p in preds], axis=0)
            ep = np.mean([p.emotion_prob for p in preds], axis=0).reshape(n)
            cp = np.mean([p.cause_prob for p in preds], axis=0).reshape(n)
            rows, cols = np.nonzero(matrix > eta)  # row-major, as a single model's decode
            pairs = [(int(r), int(c), float(matrix[r, c])) for r, c in zip(rows, cols)]
            out.append(Prediction(pairs, [int(k) for k in np.nonzero(ep > 0.5)[0]],
                                  [int(k) for k in np.nonzero(cp > 0.5)[0]], ep.tolist(), cp.tolist(),
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
    from .training import predict

    return predict(model, model.tensorize(docs), batch_size=batch_size, threshold=threshold, keep_matrix=keep_matrix)


def for_inference(model):
    """Turn on the inference-only speed-ups of a model or of an ensemble's members (E2EECPE: word
    projections read from a table, :meth:`ecpe.models.E2EECPE.cache_word_projections`). Returns ``model``."""
    for m in (model.models if isinstance(model, Ensemble) else [model]):
        if hasattr(m, "cache_word_projections"):
            m.cache_word_projections(True)
    return model


def load_models(paths: Sequence[str | Path], device=None) -> tuple[Any, list[dict[str, Any]]]:
    """Load model files onto ``device``, ready for inference (:func:`for_inference`): one file gives its
    model, several an :class:`Ensemble` of them. Returns (model or ensemble, the checkpoint dict of each file)."""
    from .models import load_model

    if not paths:
        raise ValueError("no model file given")
    loaded = [load_model(p, device=device) for p in paths]
    models = [m for m, _ in loaded]
    return for_inference(models[0] if len(models) == 1 else Ensemble(models)), [ckpt for _, ckpt in loaded]


def evaluate_runs(run_dirs: Sequence[str | Path], split_dir: str | Path, folds: Sequence[int] | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Score, on each fold's test documents, the models of several run folders (one per seed, each holding
    ``foldK/model.pt``) one by one and averaged as an ensemble.

    Returns ``per_fold`` ({fold, members: [metrics per run], ensemble: metrics}), and ``mean`` / ``std`` over
    folds of the ensemble and of the members' mean F1, with a paired t-test over folds (``ttest_p``).
    """
    from .data.corpus import find_folds, read_documents
    from .metrics import mean_std
    from .models import load_model
    from .training import evaluate

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
            members.append(model)
        single = [evaluate(m, m.tensorize(test)) for m in members]
        per_fold.append({"fold": k, "members": single, "ensemble": Ensemble(members).evaluate(test)})
        if progress:
            print(f"fold {k}: pair F1 members " + " ".join(f"{s['pair']['f1']:.4f}" for s in single)
                  + f" | ensemble {per_fold[-1]['ensemble']['pair']['f1']:.4f}", flush=True)
    out: dict[str, Any] = {"runs": [str(r) for r in runs], "split": split_dir.name, "folds": available,
                           "member_protocol": ", ".join(sorted(protocols)), "per_fold": per_fold}
    if per_fold:
        out["mean"], out["std"] = mean_std([{**f["ensemble"], "fold": f["fold"]} for f in per_fold])
        tasks = ("pair", "emotion", "cause")
        member_mean = {t: [statistics.fmean(m[t]["f1"] for m in f["members"]) for f in per_fold] for t in tasks}
        out["members_mean_f1"] = {t: statistics.fmean(v) for t, v in member_mean.items()}
        out["members_f1"] = {t: [statistics.fmean(f["members"][i][t]["f1"] for f in per_fold) for i in range(len(runs))]
                             for t in tasks}
        if len(per_fold) > 1:
            from scipy.stats import ttest_rel

            out["ttest_p"] = {t: float(ttest_rel([f["ensemble"][t]["f1"] for f in per_fold], member_mean[t]).pvalue)
                              for t in tasks}
    return out
