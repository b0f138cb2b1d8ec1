"""`--jobs 2`: folds trained in parallel worker processes give the same results as one after the other."""
from __future__ import annotations

import json

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
