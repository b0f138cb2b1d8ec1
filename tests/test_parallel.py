"""`--jobs 2`: folds trained in parallel worker processes give the same results as one after the other, and the
workers end with their parent."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, make_corpus, write_split

from ecpe.config import TrainConfig
from ecpe.training import train_run


def test_parallel_folds_match_sequential(tmp_path):
    docs = make_corpus(30, seed=5)
    split = tmp_path / "split10"
    for k in (1, 2):
        test = docs[(k - 1) * 10:k * 10]
        write_split(split, [d for d in docs if d not in test], test, fold=k)
    cfg = TrainConfig(epochs=2, patience=2, threads=1)
    seq = train_run("e2eecpe", split, [1, 2], dict(TINY), cfg, tmp_path / "seq", progress=False)
    par = train_run("e2eecpe", split, [1, 2], dict(TINY), cfg, tmp_path / "par", progress=False, jobs=2)
    assert par["folds"] == [1, 2] and not par.get("failures")
    for a, b in zip(seq["per_fold"], par["per_fold"]):
        for task in ("pair", "emotion", "cause"):
            assert a[task] == b[task]
    assert json.loads((tmp_path / "par" / "results.json").read_text())["mean"] == par["mean"]
    assert (tmp_path / "par" / "fold2" / "model.pt").exists()


CHILD = """
import os, time
from ecpe.workers import process_pool
pool = process_pool(1)
pid = pool.submit(os.getpid).result()
pool.submit(time.sleep, 300)
print(pid, flush=True)
time.sleep(300)
"""


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited orphan that nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_end_with_a_killed_parent():
    """`kill -9` of `ecpe train --jobs N` must not leave its workers training on: each exits within seconds."""
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _running(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(worker)
