"""What a fold was trained with (its recipe), and when a finished fold may be reused on a re-run."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..config import TRANSFER_WEIGHT, ConfigError, TrainConfig, from_dict, to_dict
from ..models import MODELS, migrate_config, model_class


DEFAULT_PREPROCESS = {"segmenter": "jieba"}

# TrainConfig fields that say where and how fast a fold trains, not what it trains (another device or thread
# count may round floats otherwise: the same recipe, run elsewhere)
RECIPE_IGNORED = ("threads", "device")

_FOLD_DIR = re.compile(r"fold(\d+)")

class RecipeMismatch(UsageError):
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


def finished_folds(run_dir: str | Path) -> dict[int, Path]:
    """Fold number -> ``foldK/result.json`` of every finished fold of a run folder, in fold order."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("fold*/result.json")
             if (m := _FOLD_DIR.fullmatch(p.parent.name))]
    return dict(sorted(found))


def write_fold_result(fold_dir: str | Path, result: dict[str, Any]) -> None:
    """``fold_dir/result.json``, replaced at once (a reader never sees half a file)."""
    tmp = Path(fold_dir) / "result.json.tmp"
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(Path(fold_dir) / "result.json")


def train_recipe(train_config: dict[str, Any]) -> dict[str, Any]:
    return _one_spelling({k: v for k, v in train_config.items() if k not in RECIPE_IGNORED})


def _one_spelling(train: dict[str, Any]) -> dict[str, Any]:
    """Train settings said two ways, said one way: a transfer run's weight None (the default) is
    :data:`~ecpe.config.TRANSFER_WEIGHT`, so a run recorded before a preset set the weight resumes under
    ``--transfer-weight 1``."""
    if train.get("transfer") and train.get("transfer_weight") is None:
        return {**train, "transfer_weight": TRANSFER_WEIGHT}
    return train


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
    stays, and differs); so is the train config's empty ``extra`` (removed, never read). Train config fields added
    since take their defaults, which are what earlier code did (as :func:`_checkpoint_recipe` reads a model.pt)."""
    old = dict(old)
    if isinstance(old.get("model_config"), dict) and old.get("model") in MODELS:
        try:
            old["model_config"] = migrate_config(old["model"], old["model_config"], 2)
        except ConfigError:
            pass
    if isinstance(old.get("train"), dict):
        train = {k: v for k, v in old["train"].items() if not (k == "extra" and v == {})}
        old["train"] = _one_spelling({**train_recipe(to_dict(TrainConfig())), **train})
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
    for k, done in finished_folds(run_dir).items():
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
