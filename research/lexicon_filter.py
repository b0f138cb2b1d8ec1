"""A lexicon filter on emotion candidates (as RankCP-style systems use one), measured on trained models
without retraining: a predicted pair is kept only if its emotion clause holds a word of the emotion
lexicon (DUTIR's seven classes; ``--with-hownet`` adds HowNet's positive/negative words).

The lexicon is fixed in advance (no tuning on any split); each fold's test file is scored with and without
the filter, on the models of a run folder, and the two are compared by a paired t-test over folds.

    python research/lexicon_filter.py --run runs/corpus-open --data ../shared/data/ecpe-zh \
        --out docs/results/accuracy/lexicon_filter_split10.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from ecpe.data.corpus import read_documents
from ecpe.inference import predict
from ecpe.lexicon import lexicon_classes, load_lexicon
from ecpe.metrics import mean_std, score
from ecpe.models import load_model
from ecpe.significance import paired_difference


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="../shared/data/ecpe-zh")
    ap.add_argument("--split", default="split10")
    ap.add_argument("--with-hownet", action="store_true", help="also accept HowNet positive / negative words")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_flush_denormal(True)
    classes = lexicon_classes("dutir")
    accept = {i for i, c in enumerate(classes) if c.startswith("dutir:")
              or (args.with_hownet and c in ("hownet:pos", "hownet:neg"))}
    lexicon = {w for w, ix in load_lexicon("dutir").items() if accept & set(ix)}
    run, split_dir = Path(args.run), Path(args.data) / args.split
    folds = sorted(int(p.name[4:]) for p in run.glob("fold*") if (p / "model.pt").exists())
    rows = []
    for k in folds:
        model, _ = load_model(run / f"fold{k}" / "model.pt")
        test = read_documents(split_dir / f"fold{k}_test.txt")
        preds = predict(model, model.tensorize(test))
        gold_emotion_hit = [any(w in lexicon for w in d.clauses[e]) for d in test for e in d.emotions]
        filtered = []
        for d, p in zip(test, preds):
            has = [any(w in lexicon for w in c) for c in d.clauses]
            filtered.append(dataclasses.replace(p, pairs=[x for x in p.pairs if has[x[0]]]))
        rows.append({"fold": k, "plain": score(test, preds), "filtered": score(test, filtered),
                     "gold_emotion_clauses_with_lexicon_word": sum(gold_emotion_hit) / max(len(gold_emotion_hit), 1)})
        print(f"fold {k}: pair F1 {rows[-1]['plain']['pair']['f1']:.4f} -> filtered {rows[-1]['filtered']['pair']['f1']:.4f}",
              flush=True)
    xs = [r["filtered"]["pair"]["f1"] for r in rows]
    ys = [r["plain"]["pair"]["f1"] for r in rows]
    out = {"run": str(run), "split": args.split, "folds": folds, "protocol": "dev-selected (the run's models)",
           "lexicon": "DUTIR 7 classes" + (" + HowNet pos/neg" if args.with_hownet else ""), "lexicon_words": len(lexicon),
           "plain": mean_std([{**r["plain"], "fold": r["fold"]} for r in rows])[0],
           "filtered": mean_std([{**r["filtered"], "fold": r["fold"]} for r in rows])[0],
           "filtered_vs_plain_pair_f1": paired_difference(xs, ys),
           "per_fold": rows}
    print(json.dumps({k: out[k] for k in ("plain", "filtered", "filtered_vs_plain_pair_f1")}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
