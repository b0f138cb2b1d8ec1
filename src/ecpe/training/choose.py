"""Per fold, the candidate run of highest dev pair F1 (``ecpe choose``; ``ecpe train --transfer-weight W1,W2,...``).

Runs of one split that differ in a setting (a student's transfer weight, say) are candidates. For each fold the
candidate whose model scored the highest pair F1 on the fold's dev documents is kept (the first given on a tie):
its model.pt and result.json go to ``OUT/foldK``, and ``OUT/results.json`` holds the kept folds' test figures
(mean ± std over folds) and which candidate each fold kept. Only dev scores are read to choose, so the figure
stays dev-selected. The candidates must be comparable on dev: epochs selected on dev, the same fold files and
the same dev documents (split10's seeded share of one seed and fraction, or split20's valid file).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from ..errors import UsageError
from ..metrics import mean_std
from .recipe import finished_folds, write_fold_result
from .trainer import PROTOCOL_DEV

__all__ = ["CHOICE_RULE", "check_choice_folder", "choose_per_fold", "weight_folder"]

CHOICE_RULE = "per fold, the candidate of highest dev pair F1 (the first given on a tie)"


def weight_folder(weight: float) -> str:
    """The folder of the candidate trained at ``--transfer-weight`` ``weight`` (weight0, weight0.1, weight1)."""
    return f"weight{weight:g}"


def _fold_results(run: Path) -> dict[int, dict[str, Any]]:
    return {k: json.loads(p.read_text(encoding="utf-8")) for k, p in finished_folds(run).items()}


def _dev_documents(res: dict[str, Any]) -> tuple:
    """What a fold's dev documents were: their source, number and, for a seeded share, its seed and fraction."""
    train = res["recipe"].get("train", {})
    seeded = res.get("dev_source") != "valid file"
    seed = train.get("dev_seed") if train.get("dev_seed") is not None else train.get("seed")
    return res.get("dev_source"), res.get("n_dev"), (seed, train.get("dev_fraction")) if seeded else None


def _check_candidate(run: Path, k: int, res: dict[str, Any]) -> None:
    where = run / f"fold{k}" / "result.json"
    if res.get("protocol") != PROTOCOL_DEV:
        raise UsageError(f"{where}: protocol {res.get('protocol')!r}: only runs whose epoch was selected on dev, with "
                         "a test fold, can be chosen between on dev")
    if res.get("refit"):
        raise UsageError(f"{where}: a --refit model trained on its dev documents: its dev score cannot choose it")
    if "recipe" not in res or not (res.get("dev") or {}).get("pair"):
        raise UsageError(f"{where}: no recipe or dev score recorded (a run of an older ecpe train: train it again)")
    if not (run / f"fold{k}" / "model.pt").is_file():
        raise UsageError(f"{run / f'fold{k}'}: no model.pt")


def check_choice_folder(out: str | Path, runs: Sequence[str | Path] = (), overwrite: bool = False) -> None:
    """Refuse ``out`` when it is one of ``runs`` or holds folds that training wrote (not an earlier choice),
    unless ``overwrite``: a choice replaces only folds that a choice wrote."""
    out = Path(out)
    if any(Path(r).resolve() == out.resolve() for r in runs):
        raise UsageError(f"--out {out} is one of the candidates: give another folder")
    if overwrite:
        return
    trained = sorted(str(out / f"fold{k}") for k, res in _fold_results(out).items() if "chosen" not in res)
    if trained:
        raise UsageError(f"{out} holds trained folds ({', '.join(trained)}), not a choice between runs: use another "
                         "folder, or --overwrite to replace them")


def _place_model(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (no copy of the weights), else a copy."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def choose_per_fold(runs: Sequence[str | Path], out: str | Path, folds: Sequence[int] | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Per fold (``folds``, default every fold all ``runs`` hold), the run of highest dev pair F1 into ``out``
    (module doc); returns the summary written to ``out/results.json``. Folds that some run lacks are left out
    (``summary["left_out"]`` says which run lacks them)."""
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise UsageError("choosing per fold needs two runs or more")
    if len({r.resolve() for r in runs}) != len(runs):
        raise UsageError("a run is given twice: " + ", ".join(str(r) for r in runs))
    out = Path(out)
    check_choice_folder(out, runs, overwrite)
    held = []
    for r in runs:
        if not r.is_dir():
            raise UsageError(f"{r}: not a folder (a run folder of ecpe train)")
        held.append(_fold_results(r))
    wanted = sorted(set().union(*held)) if folds is None else list(folds)
    left_out = {k: [str(r) for r, h in zip(runs, held) if k not in h] for k in wanted}
    left_out = {k: lacking for k, lacking in left_out.items() if lacking}
    kept = [k for k in wanted if k not in left_out]
    if not kept:
        raise UsageError("no fold is finished in every run: " + "; ".join(f"fold {k} lacks in {', '.join(v)}"
                                                                          for k, v in left_out.items()))
    per_fold, picks, walls = [], {}, []
    for k in kept:
        results = [h[k] for h in held]
        for r, res in zip(runs, results):
            _check_candidate(r, k, res)
        first = results[0]
        for r, res in zip(runs[1:], results[1:]):
            for what, mine, theirs in (("split", res["recipe"].get("split"), first["recipe"].get("split")),
                                       ("fold files", res["recipe"].get("data"), first["recipe"].get("data")),
                                       ("dev documents", _dev_documents(res), _dev_documents(first))):
                if mine != theirs:
                    raise UsageError(f"{r / f'fold{k}'}: other {what} than {runs[0] / f'fold{k}'} ({mine} against "
                                     f"{theirs}): their dev scores cannot choose between them")
        walls += [res.get("wall_seconds") for res in results]
        dev = [res["dev"]["pair"]["f1"] for res in results]
        best = dev.index(max(dev))
        picks[k] = str(runs[best])
        chosen = {**results[best], "chosen": {"rule": CHOICE_RULE, "run": str(runs[best]),
                                              "dev_pair_f1": dict(zip(map(str, runs), dev))}}
        fold_dir = out / f"fold{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        _place_model(runs[best] / f"fold{k}" / "model.pt", fold_dir / "model.pt")
        chosen["checkpoint"] = str(fold_dir / "model.pt")
        write_fold_result(fold_dir, chosen)
        per_fold.append({key: v for key, v in chosen.items() if key != "history"})
    mean, std = mean_std(per_fold)
    models = sorted({res["recipe"]["model"] for res in per_fold})
    seeds = sorted({res["recipe"]["train"].get("seed") for res in per_fold}, key=str)
    summary = {"model": "/".join(models), "protocol": PROTOCOL_DEV, "split": per_fold[0]["recipe"]["split"],
               "folds": kept, "seed": seeds[0] if len(seeds) == 1 else None, "mean": mean, "std": std,
               "per_fold": per_fold, "chosen_on_dev": [str(r) for r in runs], "rule": CHOICE_RULE,
               "chosen": {k: picks[k] for k in kept},
               "times_chosen": {str(r): sum(p == str(r) for p in picks.values()) for r in runs},
               "candidates_fold_minutes": (round(sum(walls) / 60, 1) if all(w is not None for w in walls) else None),
               **({"left_out": left_out} if left_out else {})}
    (out / "results.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary
