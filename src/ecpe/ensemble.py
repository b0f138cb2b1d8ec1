"""Ensembles: several trained E2EECPE models (for example one per seed) whose probabilities are averaged.

Each member reads the documents through its own vocabulary; the ensemble averages, per document, the pair
matrix M-hat = sigmoid(M) * A (eqs. 8-10), the emotion probabilities and the cause probabilities, then
decodes as one model does: pairs where the mean M-hat > eta (eq. 18), emotions and causes where the mean
probability > 1/2. Test documents are never used to build it: each member is selected on its own dev set.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .data.corpus import Document
from .metrics import Prediction, score

__all__ = ["Ensemble"]


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
