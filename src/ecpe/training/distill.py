"""Distillation: the teachers' soft targets on a fold's training documents."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..config import TrainConfig
from ..inference import load_models, predict_documents


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
        raise UsageError("teachers must be E2EECPE models with auxiliary heads")
    train_t.set_soft_targets([torch.tensor(p.pair_prob) for p in preds],
                             torch.tensor([v for p in preds for v in p.emotion_prob]),
                             torch.tensor([v for p in preds for v in p.cause_prob]), cfg.distill_weight)
    return {"teachers": [str(p) for p in paths], "weight": cfg.distill_weight}
