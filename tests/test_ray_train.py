"""``ecpe train --engine ray``: every fold of every seed a Ray task; the same per-fold results as the local engine."""
from __future__ import annotations

import json

import pytest

from conftest import make_corpus, write_split

from ecpe.cli import main



@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="--engine ray needs the ray extra: pip install -e '.[ray]'")
    # address="local": a new Ray of 2 CPUs even where a `ray start` cluster runs on this machine; train_runs
    # then uses the Ray the caller has initialised
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 ** 2,
             log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()

TINY = ["--epochs", "2", "--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8", "-q",
        "--threads", "1"]


def _folds(out):
    """Per seed and fold: the figures and per-epoch losses that training produced (not timings or paths)."""
    got = {}
    for path in sorted(out.glob("seed*/fold*/result.json")):
        r = json.loads(path.read_text())
        got[f"{path.parent.parent.name}/{path.parent.name}"] = (
            [r[t]["f1"] for t in ("pair", "emotion", "cause")], [e["loss"] for e in r["history"]], r["best_epoch"])
    return got


def test_ray_engine_gives_the_local_engines_results_and_reuses_finished_folds(local_ray, tmp_path, capsys):
    docs = make_corpus(40, seed=3)
    data = write_split(tmp_path / "data" / "split10", docs[:30], docs[30:])
    write_split(data, docs[10:], docs[:10], fold=2)
    common = ["train", "--data", str(data), "--folds", "1,2", "--seeds", "1,2", *TINY]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    local, ray = _folds(tmp_path / "local"), _folds(tmp_path / "ray")
    assert len(local) == 4 and ray == local
    summary = json.loads((tmp_path / "ray" / "seed1" / "results.json").read_text())
    assert summary["last_invocation"]["engine"] == "ray" and summary["last_invocation"]["folds_trained"] == [1, 2]
    capsys.readouterr()
    # a re-run reuses every finished fold (nothing is submitted) and refuses other settings before training
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert capsys.readouterr().err.count("reusing") == 4
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--hidden", "6"]) == 2
    assert "was trained with other settings (hidden 8 -> 6)" in capsys.readouterr().err


def test_engine_flags_are_checked(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--final", "--engine", "ray"]) == 2
    assert "--engine ray trains the folds of a cross-validation run" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--address", "auto"]) == 2
    assert "--address applies to --engine ray" in capsys.readouterr().err
