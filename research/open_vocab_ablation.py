"""What the open vocabulary is worth, measured on models trained with ``--open-vocab``, without retraining.

Training documents never contain the words that ``--open-vocab`` adds, so those rows are never updated:
they keep their pretrained vectors while the rows of training words move with fine-tuning. Each fold's
model is scored on its test file three ways:

- ``open``: as trained (test words outside the training documents read their pretrained vector);
- ``closed``: those words read as ``<unk>``, as a closed vocabulary would give them (the trained model is the same);
- ``mapped``: their pretrained vectors moved by the linear map that best carries the training words'
  pretrained vectors to their fine-tuned ones (least squares, fitted on training words only), so that they
  follow the drift of fine-tuning.

The pretrained vectors are rebuilt from the run's own settings (cached, as ``ecpe train`` made them).

    python research/open_vocab_ablation.py --run runs/corpus-open --data ../shared/data/ecpe-zh \
        --out docs/results/accuracy/open_vocab_ablation_split10.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ecpe.config import TrainConfig, from_dict
from ecpe.data.corpus import load_fold
from ecpe.metrics import mean_std
from ecpe.models import load_model
from ecpe.significance import paired_difference
from ecpe.training import dev_split, evaluate, word_vectors


def fold_variants(run: Path, split_dir: Path, k: int) -> dict:
    model, ckpt = load_model(run / f"fold{k}" / "model.pt")
    cfg = from_dict(TrainConfig, {k: v for k, v in ckpt["meta"]["train_config"].items() if k != "extra"})  # removed
    fold = load_fold(split_dir, k)
    train_docs, _, _ = dev_split(fold, cfg.seed, cfg.dev_fraction)
    trained = {w for d in train_docs for c in d.clauses for w in c}
    vocab = model.vocab
    extra = torch.tensor([i for i, w in enumerate(vocab.itos) if i > 1 and w not in trained], dtype=torch.long)
    seen = torch.tensor([i for i, w in enumerate(vocab.itos) if i > 1 and w in trained], dtype=torch.long)
    vectors, _ = word_vectors(cfg, train_docs, fold.train, model.config.embed_dim)
    dim = model.config.embed_dim
    has = [i for i in seen.tolist() if vocab.itos[i] in vectors]
    E0 = torch.tensor(np.stack([np.pad(vectors[vocab.itos[i]], (0, dim - len(vectors[vocab.itos[i]]))) for i in has]))
    weight = model.embed.weight.data
    E1 = weight[has]
    # affine least squares: [E0, 1] W = E1
    X = torch.cat([E0, torch.ones(len(has), 1)], 1).double()
    W = torch.linalg.lstsq(X, E1.double()).solution.float()
    test_t = model.tensorize(fold.test)
    out = {"fold": k, "extra_words": len(extra), "train_words_with_vectors": len(has),
           "drift_cosine_mean": float(torch.nn.functional.cosine_similarity(E0, E1).mean()),
           "map_fit_r2": float(1 - ((X.float() @ W - E1) ** 2).sum() / ((E1 - E1.mean(0)) ** 2).sum())}
    original = weight.clone()
    out["open"] = evaluate(model, test_t)
    weight[extra] = original[1]                                # <unk>
    out["closed"] = evaluate(model, test_t)
    weight[extra] = torch.cat([original[extra], torch.ones(len(extra), 1)], 1) @ W
    out["mapped"] = evaluate(model, test_t)
    weight.copy_(original)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a run folder of `ecpe train --open-vocab ...`")
    ap.add_argument("--data", default="../shared/data/ecpe-zh")
    ap.add_argument("--split", default="split10")
    ap.add_argument("--folds", default="all")
    ap.add_argument("--out", help="write the JSON here")
    args = ap.parse_args(argv)
    torch.set_flush_denormal(True)
    run, split_dir = Path(args.run), Path(args.data) / args.split
    folds = sorted(int(p.name[4:]) for p in run.glob("fold*") if (p / "model.pt").exists()) if args.folds == "all" \
        else [int(x) for x in args.folds.split(",")]
    rows = []
    for k in folds:
        rows.append(fold_variants(run, split_dir, k))
        r = rows[-1]
        print(f"fold {k}: pair F1 open {r['open']['pair']['f1']:.4f} closed {r['closed']['pair']['f1']:.4f} "
              f"mapped {r['mapped']['pair']['f1']:.4f} ({r['extra_words']} words from the vectors; drift cosine "
              f"{r['drift_cosine_mean']:.3f})", flush=True)
    summary = {"run": str(run), "split": args.split, "folds": folds, "protocol": "dev-selected (the run's)",
               "per_fold": rows}
    for v in ("open", "closed", "mapped"):
        summary[v] = mean_std([{**r[v], "fold": r["fold"]} for r in rows])[0]
    for v in ("closed", "mapped"):
        xs = [r[v]["pair"]["f1"] for r in rows]
        ys = [r["open"]["pair"]["f1"] for r in rows]
        summary[f"{v}_vs_open_pair_f1"] = paired_difference(xs, ys)
    print(json.dumps({k: summary[k] for k in summary if k != "per_fold"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
