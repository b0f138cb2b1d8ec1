"""Model registry and the one-file checkpoint format shared by every model (see :mod:`ecpe.models.base`)."""
from __future__ import annotations

import logging
import pickle
import platform
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..config import ConfigError, from_dict, to_dict
from ..data.vocab import Vocab
from ..devices import resolve_device
from ..version import __version__
from .base import Decoded, ECPEModel, pair_f1
from .e2eecpe import E2EECPE
from .two_stage import Indep, InterCE, InterEC, TwoStageConfig, TwoStageECPE

__all__ = ["MODELS", "register", "model_class", "build_model", "save_model", "load_model", "migrate_config", "CHECKPOINT_FORMAT",
           "CONFIG_VERSION", "ECPEModel", "Decoded", "E2EECPE", "TwoStageECPE", "TwoStageConfig", "pair_f1"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ecpe-checkpoint/1"
# version of the "config" dict a checkpoint stores; raise it (and add a step to migrate_config) whenever a
# config field is removed or renamed, or a new field's default would change what an old model computes
CONFIG_VERSION = 3

# name -> model class (its config class is ``cls.config_class``)
MODELS: dict[str, type[ECPEModel]] = {}


def register(model_cls: type[ECPEModel]) -> type[ECPEModel]:
    """Add a model class to the registry under its ``name`` (usable as a class decorator)."""
    if not (isinstance(model_cls, type) and issubclass(model_cls, ECPEModel)):
        raise TypeError(f"{model_cls!r} is not an ECPEModel subclass")
    MODELS[model_cls.name] = model_cls
    return model_cls


# one line per model
register(E2EECPE)
register(Indep)    # the two-stage baselines of Xia & Ding (2019), each with and without the pair filter
register(InterCE)  # (config "filter")
register(InterEC)


def model_class(name: str) -> type[ECPEModel]:
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, vocab: Vocab, config: dict[str, Any] | None = None, embeddings=None,
                **resources) -> ECPEModel:
    """A fresh model by name (``e2eecpe``, ...) with a config given as a dict; an unknown key raises
    :class:`ecpe.config.ConfigError` naming it. ``resources``: extra tables a model takes (E2EECPE:
    ``lexicon_features``)."""
    cls = model_class(name)
    return cls(vocab, from_dict(cls.config_class, config or {}), embeddings, **resources)


# ---- checkpoint config migration -------------------------------------------------------------------
def _v1_to_v2(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints before the config version was recorded (commits up to 825bd02) kept every key their
    code had: ``loss_norm`` (b373a99..10a85e2: a training-only switch, removed); no ``word_dropout`` before
    c4e6ae5 (training-only; absent meant none); no ``char_backoff`` before 6ec6df7 (absent meant off)."""
    config = dict(config)
    if model == "e2eecpe":
        config.pop("loss_norm", None)
        config.setdefault("word_dropout", 0.0)
        config.setdefault("char_backoff", False)
    return config


# E2EECPE options removed at version 3 (measured no gain, docs/accuracy.md): field -> (the value that meant the
# paper's model, what the option did); the last commit that had them:
REMOVED_AT_V3_COMMIT = "84eddee"
_REMOVED_AT_V3 = {"exchange": (0, "ISML-style exchange passes"),
                  "towers": ("shared", "a separate clause encoder for the cause side"),
                  "pair_scorer": ("biaffine", "a distance term beside the biaffine")}  # its values biaffine+distance, +mlp


def _v2_to_v3(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The options ``exchange``, ``towers`` and ``pair_scorer`` values ``biaffine+distance`` / ``biaffine+mlp``
    were removed after commit 84eddee: a config at their paper value loses the key, any other is refused
    (:class:`ConfigError` naming the option and that commit)."""
    config = dict(config)
    if model != "e2eecpe":
        return config
    for name, (paper, what) in _REMOVED_AT_V3.items():
        value = config.get(name, paper)
        if name == "pair_scorer" and value not in ("biaffine+distance", "biaffine+mlp"):
            continue
        if value != paper:
            raise ConfigError(f"the model uses {name}={value!r} ({what}), an option removed from ecpe after commit "
                              f"{REMOVED_AT_V3_COMMIT}; load it with ecpe at that commit", field=name, value=value)
        config.pop(name, None)
    return config


_MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}  # from version k to k + 1


def migrate_config(model: str, config: dict[str, Any], version: int) -> dict[str, Any]:
    """A checkpoint's config dict brought from ``version`` to :data:`CONFIG_VERSION`."""
    if version > CONFIG_VERSION:
        raise UsageError(f"the checkpoint's config version {version} is newer than this ecpe's ({CONFIG_VERSION}); "
                         "upgrade ecpe")
    for v in range(version, CONFIG_VERSION):
        config = _MIGRATIONS[v](model, config)
    return config


# ---- checkpoints ---------------------------------------------------------------------------------
def save_model(model: ECPEModel, path: str | Path, preprocess: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
    """Write a model to one file of plain data (loadable with ``torch.load(weights_only=True)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "config_version": CONFIG_VERSION,
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


def load_model(path: str | Path, device: str | torch.device | None = "cpu") -> tuple[ECPEModel, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_model` (by this or an earlier version, see
    :func:`migrate_config`) onto ``device`` (see :func:`ecpe.devices.resolve_device`); returns (model in eval
    mode, checkpoint dict with its config migrated)."""
    target = resolve_device(device)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # what weights_only refuses: objects other than tensors and plain data
        raise UsageError(f"{path}: refused: the file holds Python objects other than tensors and plain data, which "
                         "could run code when loaded; ecpe reads only the plain-data checkpoints that ecpe train "
                         "writes") from None
    except Exception as e:
        raise UsageError(f"{path}: not an ecpe checkpoint ({e.__class__.__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"{path}: not an ecpe checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    version = int(ckpt.get("config_version", 1))
    try:
        config = migrate_config(ckpt["model"], ckpt["config"], version)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}", field=e.field, expected=e.expected, value=e.value) from None
    if version != CONFIG_VERSION:
        log.info("%s: config migrated from version %d to %d", path, version, CONFIG_VERSION)
    ckpt = {**ckpt, "config": config, "config_version": CONFIG_VERSION}
    model = build_model(ckpt["model"], Vocab.from_state_dict(ckpt["vocab"]), config)
    model.load_state_dict(ckpt["state_dict"])
    model.to(target).eval()
    return model, ckpt
