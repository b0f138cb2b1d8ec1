"""``ecpe train --engine ray``: every fold of every seed a Ray task; the same per-fold results as the local engine."""
from __future__ import annotations

import json

import pytest

from helpers import make_corpus, write_split

from ecpe.cli import main

_ray = pytest.importorskip("ray", reason="--engine ray needs the ray extra: pip install -e '.[ray]'")



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


def test_a_lost_worker_node_is_retried_and_the_run_finishes(tmp_path, monkeypatch):
    """Two nodes of one CPU each train a fold each; the second node is removed once both folds are training (both
    have written their word vectors): its fold is retried on the first, and every fold ends with the same
    result as the local engine's."""
    import threading
    import time

    if _ray.is_initialized():
        _ray.shutdown()
    ray = pytest.importorskip("ray", reason="--engine ray needs the ray extra: pip install -e '.[ray]'")
    from ray.cluster_utils import Cluster

    from ecpe.config import TrainConfig
    from ecpe.training import train_run

    docs = make_corpus(40, seed=5)
    data = write_split(tmp_path / "data" / "split10", docs[:30], docs[30:])
    write_split(data, docs[10:], docs[:10], fold=2)
    cache = tmp_path / "cache"
    monkeypatch.setenv("ECPE_CACHE", str(cache))  # the nodes started below inherit it
    tiny = {"embed_dim": 16, "hidden": 8, "filters": 4, "vertex_dim": 8}
    cfg = TrainConfig(epochs=25, patience=25, threads=1)
    train_run("e2eecpe", data, [1, 2], tiny, cfg, tmp_path / "local", progress=False)

    small = {"num_cpus": 1, "object_store_memory": 80 * 1024 ** 2}
    cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    lost = cluster.add_node(**small)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        for f in (cache / "w2v").glob("*.npz"):
            f.unlink()  # so that a fold writing its vectors says it has started
        out: list = []
        thread = threading.Thread(target=lambda: out.append(
            train_run("e2eecpe", data, [1, 2], tiny, cfg, tmp_path / "ray", progress=False, engine="ray")))
        thread.start()
        deadline = time.monotonic() + 120
        while len(list((cache / "w2v").glob("*.npz"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(list((cache / "w2v").glob("*.npz"))) == 2, "the folds did not start"
        assert not list((tmp_path / "ray").glob("fold*/result.json"))  # both folds are still training
        cluster.remove_node(lost, allow_graceful=False)
        thread.join(timeout=300)
        assert out, "the run did not finish"
    finally:
        ray.shutdown()
        cluster.shutdown()
    summary = out[0]
    assert "failures" not in summary and summary["folds"] == [1, 2]
    for k in (1, 2):
        got = json.loads((tmp_path / "ray" / f"fold{k}" / "result.json").read_text())
        want = json.loads((tmp_path / "local" / f"fold{k}" / "result.json").read_text())
        assert [e["loss"] for e in got["history"]] == [e["loss"] for e in want["history"]]
        assert got["pair"] == want["pair"]


def test_reproduce_on_ray_trains_every_fold_of_every_run_as_a_task(local_ray, tmp_path):
    from test_reproduce import make_dataset

    data = make_dataset(tmp_path / "data")
    out = tmp_path / "report"
    assert main(["reproduce", "--data", str(data), "--out", str(out), "--quick", "-q", "--engine", "ray",
                 "--runs", "e2eecpe,indep"]) == 0
    for run in ("e2eecpe", "indep"):
        summary = json.loads((out / "runs" / run / "results.json").read_text())
        assert summary["folds"] == [1, 2] and summary["last_invocation"]["engine"] == "ray"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "a Ray cluster" in report and "| E2EECPE |" in report


def test_run_on_ray_reports_each_result_and_each_error_by_key(local_ray):
    from ecpe.cluster import run_on_ray
    from ecpe.data.text import split_clauses

    done, errors = {}, {}
    run_on_ray(split_clauses, [("a", ("你好，世界",), {"num_cpus": 1}), ("b", (5,), {"num_cpus": 1}),
                               ("c", ("好。",), {"num_cpus": 1})],
               done.__setitem__, errors.__setitem__, progress=False)
    assert done == {"a": ["你好", "世界"], "c": ["好"]} and list(errors) == ["b"]
    assert isinstance(errors["b"], TypeError)


def test_vectors_build_checks_its_engine_flags(tmp_path, capsys):
    docs = make_corpus(20, seed=1)
    split = write_split(tmp_path / "split10", docs[:15], docs[15:])
    assert main(["vectors", "build", "--data", str(split), "--address", "auto"]) == 2
    assert "--address applies to --engine ray" in capsys.readouterr().err
