"""``ecpe sweep GRID.toml``: a grid of ``ecpe train`` runs — named flag sets × seeds × splits — trained as one pool of
fold tasks (on this machine, or one Ray task per fold with ``--engine ray``), then one table per split of every run
against the baseline run of the same seed (paired t-tests over folds, :func:`ecpe.compare.compare`).

A grid file (TOML)::

    splits = ["split10"]                 # default ["split10"]
    seeds = [1, 2]                       # default [1]
    folds = "all"                        # default "all" (or "1,2")
    baseline = "paper"                   # default: the first run
    data = "../shared/data/ecpe-zh"      # default: --data, $ECPE_DATA, or the user cache

    [runs]                               # name = the flags of `ecpe train` for that run
    paper = []
    best = ["--preset", "best"]
    window = ["--pair-scorer", "biaffine+window", "--max-distance", "3"]

Run ``NAME`` of seed ``S`` on split ``SPLIT`` is written to ``OUT/SPLIT/NAME/seedS`` (a run folder of ``ecpe train``:
finished folds are reused on a re-run, other settings refused); the tables to ``OUT/table_SPLIT.{md,json}``.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .compare import compare, load_run, markdown

__all__ = ["Grid", "GridError", "read_grid", "run_folder", "write_tables", "SET_BY_SWEEP"]

# flags a grid's runs may not give: the sweep sets them for every cell
SET_BY_SWEEP = ("--out", "--data", "--split", "--seed", "--seeds", "--folds", "--final", "--engine", "--jobs",
                "--address", "--overwrite")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class GridError(UsageError):
    """A malformed grid file: the message names the file and the key."""


@dataclass(frozen=True)
class Grid:
    """What a grid file asks for."""

    runs: dict[str, list[str]]
    seeds: list[int]
    splits: list[str]
    folds: str
    baseline: str
    data: str | None = None

    def cells(self) -> list[tuple[str, str, int]]:
        """Every (run name, split, seed) of the grid, split by split."""
        return [(name, split, seed) for split in self.splits for name in self.runs for seed in self.seeds]


def read_grid(path: str | Path) -> Grid:
    """Read and check a grid file (see the module's doc); :class:`GridError` names what is wrong."""
    path = Path(path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridError(f"{path}: no such grid file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GridError(f"{path}: not a TOML file ({e})") from None
    unknown = sorted(set(raw) - {"runs", "seeds", "splits", "folds", "baseline", "data"})
    if unknown:
        raise GridError(f"{path}: unknown key(s) {', '.join(unknown)} (known: runs, seeds, splits, folds, baseline, data)")
    runs = raw.get("runs")
    if not isinstance(runs, dict) or not runs:
        raise GridError(f"{path}: [runs] must name at least one run: NAME = [\"--flag\", \"value\", ...]")
    for name, flags in runs.items():
        if not _NAME.match(name):
            raise GridError(f"{path}: run name {name!r} must be letters, digits, '_', '.', '-' (it names a folder)")
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise GridError(f"{path}: runs.{name} must be a list of strings (the flags of ecpe train)")
        taken = [f for f in flags if f.split("=")[0] in SET_BY_SWEEP]
        if taken:
            raise GridError(f"{path}: runs.{name} gives {', '.join(taken)}, which the sweep sets for every run")
    seeds = raw.get("seeds", [1])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise GridError(f"{path}: seeds must be a list of different integers, got {seeds!r}")
    splits = raw.get("splits", ["split10"])
    if not isinstance(splits, list) or not splits or not all(isinstance(s, str) and _NAME.match(s) for s in splits):
        raise GridError(f"{path}: splits must be a list of split folder names, got {splits!r}")
    folds = raw.get("folds", "all")
    if not isinstance(folds, str):
        raise GridError(f"{path}: folds must be a string, 'all' or like '1,2', got {folds!r}")
    baseline = raw.get("baseline", next(iter(runs)))
    if baseline not in runs:
        raise GridError(f"{path}: baseline {baseline!r} is not a run of [runs] ({', '.join(runs)})")
    data = raw.get("data")
    if data is not None and not isinstance(data, str):
        raise GridError(f"{path}: data must be a path, got {data!r}")
    if data is not None and not Path(data).is_absolute():
        data = str((path.parent / data).resolve())  # relative to the grid file
    return Grid(dict(runs), list(seeds), list(splits), folds, baseline, data)


def run_folder(out: str | Path, name: str, split: str, seed: int) -> Path:
    return Path(out) / split / name / f"seed{seed}"


def write_tables(grid: Grid, out: str | Path) -> dict[str, Path]:
    """``OUT/table_SPLIT.md`` and ``.json`` per split: for each seed, every run with results against the baseline run
    of that seed (:func:`ecpe.compare.compare`). Returns the Markdown files written."""
    out, written = Path(out), {}
    for split in grid.splits:
        sections, results = [], []
        for seed in grid.seeds:
            base_dir = run_folder(out, grid.baseline, split, seed)
            if not (base_dir / "results.json").exists():
                continue
            baseline = load_run(base_dir, name=grid.baseline)
            runs = [load_run(d, name=name) for name in grid.runs if name != grid.baseline
                    if ((d := run_folder(out, name, split, seed)) / "results.json").exists()]
            result = compare(runs, baseline)
            results.append({"seed": seed, **result})
            sections.append(f"### seed {seed}\n\n" + markdown(result))
        if not results:
            continue
        head = (f"# Sweep {out.name}: {split}\n\nEvery run of the grid against `{grid.baseline}` of the same seed. "
                f"Made by `ecpe sweep` (the flags of each run: `runs.json`).\n\n")
        (out / f"table_{split}.md").write_text(head + "\n".join(sections), encoding="utf-8")
        (out / f"table_{split}.json").write_text(json.dumps({"split": split, "baseline": grid.baseline,
                                                             "runs": grid.runs, "by_seed": results},
                                                            ensure_ascii=False, indent=1), encoding="utf-8")
        written[split] = out / f"table_{split}.md"
    return written
