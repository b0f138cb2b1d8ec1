"""``ecpe sweep GRID.toml``: a grid of runs trained as one pool, then one table per split against the baseline."""
from __future__ import annotations

import json

import pytest

from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.sweep import GridError, read_grid

TINY = '"--epochs", "2", "--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8", "--threads", "1"'


@pytest.fixture
def data(tmp_path):
    docs = make_corpus(40, seed=4)
    split = write_split(tmp_path / "data" / "split10", docs[:30], docs[30:])
    write_split(split, docs[10:], docs[:10], fold=2)
    return tmp_path / "data"


def test_sweep_trains_the_grid_and_tables_it_against_the_baseline(data, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'folds = "1,2"\nseeds = [1]\ndata = "data"\n\n[runs]\npaper = [{TINY}]\n'
                    f'window = [{TINY}, "--pair-scorer", "biaffine+window", "--max-distance", "1"]\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(grid), "--out", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    for name in ("paper", "window"):
        res = json.loads((out / "split10" / name / "seed1" / "results.json").read_text())
        assert res["folds"] == [1, 2] and res["seed"] == 1
    window = json.loads((out / "split10" / "window" / "seed1" / "results.json").read_text())
    assert window["config"]["model"]["pair_scorer"] == "biaffine+window" and window["config"]["model"]["max_distance"] == 1
    table = json.loads((out / "table_split10.json").read_text())
    rows = table["by_seed"][0]["rows"]
    assert table["baseline"] == "paper" and [r["name"] for r in rows] == ["paper", "window"]
    assert set(rows[1]["ttest"]) == {"pair", "emotion", "cause"} and rows[1]["folds"] == [1, 2]
    md = (out / "table_split10.md").read_text()
    assert "| window |" in md and "paired t-test of F1 over folds against paper" in md and md in captured.out + "\n"
    # a re-run reuses every finished fold
    assert main(["sweep", str(grid), "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().err.count("reusing") == 4


@pytest.mark.parametrize("text, message", [
    ('seeds = [1]\n', "[runs] must name at least one run"),
    ('[runs]\n"a b" = []\n', "run name 'a b' must be"),
    ('[runs]\na = ["--out", "x"]\n', "runs.a gives --out, which the sweep sets"),
    ('seeds = [1, 1]\n[runs]\na = []\n', "seeds must be a list of different integers"),
    ('baseline = "b"\n[runs]\na = []\n', "baseline 'b' is not a run"),
    ('colour = 1\n[runs]\na = []\n', "unknown key(s) colour"),
    ('[runs\n', "not a TOML file"),
])
def test_grid_files_are_checked(tmp_path, text, message):
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(GridError, match=rf"^{path}: .*" + message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        read_grid(path)


def test_a_run_whose_flags_train_refuses_is_named(data, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('data = "data"\n[runs]\nbad = ["--embeddings", "corpus", "--corpus-epochs", "0"]\n')
    assert main(["sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "runs.bad (split10, seed 1): --corpus-epochs must be at least 1, got 0" in err
