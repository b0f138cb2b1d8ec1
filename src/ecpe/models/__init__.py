"""Model registry and the one-file checkpoint format shared by every model."""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from ..config import E2EConfig, from_dict, to_dict
from ..data.vocab import Vocab
from .e2eecpe import E2EECPE

__all__ = ["MODELS", "register", "build_model", "save_model", "load_model", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "ecpe-checkpoint/1"

# name -> (model class, config class)
MODELS: dict[str, tuple[type, type]] = {"e2eecpe": (E2EECPE, E2EConfig)}


def register(name: str, model_cls: type, config_cls: type) -> None:
    MODELS[name] = (model_cls, config_cls)


def build_model(name: str, vocab: Vocab, config: dict[str, Any] | None = None, embeddings=None, **resources):
    """A fresh model by name (``e2eecpe``, ...) with a config given as a dict (unknown keys ignored);
    ``resources``: extra tables a model takes (E2EECPE: ``lexicon_features``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    model_cls, config_cls = MODELS[name]
    return model_cls(vocab, from_dict(config_cls, config or {}), embeddings, **resources)


def save_model(model, path: str | Path, preprocess: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
    """Write a model to one file of plain data (loadable with ``torch.load(weights_only=True)``)."""
    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": model.name,
        "config": to_dict(model.config),
        "vocab": model.vocab.state_dict(),
        "preprocess": dict(preprocess),
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},  # loads anywhere
        "versions": {"ecpe": __version__, "torch": str(torch.__version__), "python": platform.python_version()},
        "meta": dict(meta or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path


def load_model(path: str | Path, device: str | torch.device | None = "cpu"):
    """Load a checkpoint written by :func:`save_model` onto ``device`` (see :func:`ecpe.devices.resolve_device`);
    returns (model in eval mode, checkpoint dict)."""
    from ..devices import resolve_device

    target = resolve_device(device)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not an ecpe checkpoint ({e.__class__.__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an ecpe checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    model = build_model(ckpt["model"], Vocab.from_state_dict(ckpt["vocab"]), ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(target).eval()
    return model, ckpt


# the two-stage baselines of Xia & Ding (2019), each with and without the pair filter (config "filter")
from .two_stage import Indep, InterCE, InterEC, TwoStageConfig  # noqa: E402

for _cls in (Indep, InterCE, InterEC):
    register(_cls.name, _cls, TwoStageConfig)
