"""`ecpe predict --engine ray` on a local two-node Ray cluster (ray.cluster_utils.Cluster: two raylets on this
machine, one CPU each): the workers write the shards, the lines are those of the local engine, and losing a
node half-way still ends with every document exactly once."""
from __future__ import annotations

import threading
from collections import Counter
import time
from pathlib import Path

import pytest
from test_batch import ids_in, make_shards, read_jsonl

from ecpe.batch import find_shards
from ecpe.cli import main
from tiny_model import make_tiny_model

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ecpe[ray]')")


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    small = {"num_cpus": 1, "object_store_memory": 80 * 1024 ** 2}
    c = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    worker = c.add_node(**small)
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, worker
    finally:
        ray.shutdown()
        c.shutdown()


def writing(out: Path) -> set[str]:
    """The temporary files (shards being written) under ``out``."""
    return {p.name for p in out.rglob(".*.tmp")} if out.exists() else set()


def test_two_nodes_give_the_local_lines_and_survive_losing_a_node(tmp_path, cluster):
    c, worker = cluster
    model = make_tiny_model(tmp_path / "model.pt", threshold=0.3, rig=False)
    inp, local, out = tmp_path / "in", tmp_path / "local", tmp_path / "out"
    ids = make_shards(inp, 4, 20000, bad_every=50)  # each shard takes seconds: the node dies mid-shard
    base = ["predict", "--model", str(model), "--input", str(inp), "-q"]
    assert main([*base, "--output", str(local)]) == 1
    assert len(ray.nodes()) == 2 and ray.cluster_resources()["CPU"] == 2
    result = {}
    job = threading.Thread(target=lambda: result.setdefault("rc", main(
        [*base, "--output", str(out), "--engine", "ray", "--workers", "2"])))
    job.start()
    deadline = time.monotonic() + 120
    while job.is_alive() and time.monotonic() < deadline and len(writing(out)) < 2:
        time.sleep(0.005)
    assert len(writing(out)) >= 2, "two shards were not seen being written at once"
    # one of the two is written on the worker node (one CPU each): it dies with the node, and runs again
    seen = writing(out)
    c.remove_node(worker, allow_graceful=False)
    while job.is_alive() and time.monotonic() < deadline + 180:
        seen |= writing(out)
        time.sleep(0.005)
    job.join(60)
    begun = Counter(name.rsplit(".", 2)[0] for name in seen)  # ".part-000.jsonl.HOST-PID.tmp" -> its shard
    assert max(begun.values()) >= 2, f"no shard was begun again after the node was lost: {sorted(seen)}"
    assert result.get("rc") == 1  # the bad lines were recorded
    assert find_shards(out) == find_shards(local) == find_shards(inp)
    for s in find_shards(local):
        assert read_jsonl(out / s) == read_jsonl(local / s), s
    found = ids_in(out)
    assert len(found) == len(ids) and sorted(found) == sorted(ids)
    assert not list(Path(out).rglob("*.tmp"))
