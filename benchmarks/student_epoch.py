"""Seconds per training epoch of a student with and without transfer documents, alternated in one process so
that both see the same machine load.

    python benchmarks/student_epoch.py --data DATA --transfer RUN/transfer --fold 1 --docs 2000 --rounds 2

``--transfer``: a folder of ``ecpe transfer build --teacher ... --out`` (or ``ecpe train --transfer auto``'s
OUT/transfer). One model (the paper's settings, vocabulary of gold + transfer documents so that both epochs train
the same model) is built; each round trains one gold-only epoch and one epoch of gold + the first ``--docs``
transfer documents of the seeded subset, and prints their seconds, documents and clauses per second as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from ecpe.config import TrainConfig
from ecpe.data.corpus import load_fold
from ecpe.models import build_model
from ecpe.training import Trainer, build_vocab, dev_split, load_transfer, seed_everything
from ecpe.training.student import mix_transfer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder holding split10/")
    p.add_argument("--split", default="split10")
    p.add_argument("--transfer", required=True)
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--transfer-batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    fold = load_fold(os.path.join(a.data, a.split), a.fold)
    cfg = TrainConfig(epochs=1, patience=1, transfer=a.transfer, transfer_docs=a.docs,
                      transfer_batch_size=a.transfer_batch_size)
    train_docs, dev_docs, _ = dev_split(fold, cfg.dev_share_seed, cfg.dev_fraction)
    ts = load_transfer(cfg, fold, dev_docs)
    seed_everything(1)
    model = build_model("e2eecpe", build_vocab([*train_docs, *ts.docs], cfg), {})
    gold = model.tensorize(train_docs)
    mixed = mix_transfer(model, gold, ts, cfg)
    tr = mixed.transfer
    clauses = {"gold": int(gold.doc_lens.sum()), "mixed": int(gold.doc_lens.sum() + tr.doc_lens.sum())}
    docs = {"gold": len(gold), "mixed": len(gold) + len(tr)}
    rows = []
    for r in range(a.rounds):
        for name, data in (("gold", gold), ("mixed", mixed)):
            start = time.perf_counter()
            Trainer(cfg, progress=False).fit(model, data, None)
            s = time.perf_counter() - start
            rows.append({"round": r + 1, "epoch": name, "seconds": round(s, 2), "documents": docs[name],
                         "clauses": clauses[name], "clauses_per_s": round(clauses[name] / s)})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"threads": torch.get_num_threads(), "load_average": os.getloadavg(),
                      "transfer_docs": len(ts.docs), "transfer_batch_size": a.transfer_batch_size}))


if __name__ == "__main__":
    main()
