"""Does ``--precision bf16`` change what the models predict?

    python benchmarks/precision.py --run RUN [--data ../shared/data/ecpe-zh] [--split split10] [--out FILE.json]

For every fold of a recorded run (``RUN/foldK/model.pt``), predicts the fold's test documents in fp32 and in
bf16 with the same model and prints, per fold and in total: the predicted pairs, the pairs only one precision
predicts, the emotion / cause clauses that flip, the largest difference of a pair probability, and the pair /
emotion / cause F1 of both (test documents only: the models were selected on dev by ``ecpe train``; nothing
here is tuned). Speed is measured by ``benchmarks/speed.py --precision``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder of ecpe train (foldK/model.pt)")
    ap.add_argument("--data", default=os.environ.get("ECPE_DATA", "../shared/data/ecpe-zh"))
    ap.add_argument("--split", default="split10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="also write the figures here as JSON")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from ecpe.data import load_fold
    from ecpe.inference import Extractor, set_precision
    from ecpe.inference.arrays import predict_chunk
    from ecpe.metrics import Prediction, mean_std, score

    torch.set_num_threads(args.threads)
    split = Path(args.data) / args.split
    folds = sorted(int(p.name[4:]) for p in Path(args.run).glob("fold*") if (p / "model.pt").exists())
    if not folds:
        print(f"no foldK/model.pt under {args.run}", file=sys.stderr)
        return 2
    rows, scores = [], {"fp32": [], "bf16": []}
    for k in folds:
        model = Extractor.load(Path(args.run) / f"fold{k}" / "model.pt").model
        docs = load_fold(split, k).test
        got = {}
        for precision in ("fp32", "bf16"):
            set_precision(model, precision)
            res = predict_chunk(model, [d.clauses for d in docs], keep_matrix=True)
            pairs = [{tuple(map(int, res.pairs[j])) for j in range(res.pair_starts[i], res.pair_starts[i + 1])}
                     for i in range(len(docs))]
            got[precision] = res, pairs

            def clauses(prob, i):  # the clauses of document i above 1/2
                s = res.clause_starts[i]
                return [j for j in range(res.doc_lens[i]) if prob[s + j] > 0.5]
            preds = [Prediction(pairs=[(e, c, 1.0) for e, c in p], emotions=clauses(res.emotion_prob, i),
                                causes=clauses(res.cause_prob, i)) for i, p in enumerate(pairs)]
            scores[precision].append(score(docs, preds))
        (r32, p32), (r16, p16) = got["fp32"], got["bf16"]
        rows.append({"fold": k, "documents": len(docs), "pairs_fp32": sum(map(len, p32)),
                     "pairs_bf16": sum(map(len, p16)), "pairs_in_one_only": sum(len(a ^ b) for a, b in zip(p32, p16)),
                     "emotion_clauses_flipped": int(((r32.emotion_prob > 0.5) != (r16.emotion_prob > 0.5)).sum()),
                     "cause_clauses_flipped": int(((r32.cause_prob > 0.5) != (r16.cause_prob > 0.5)).sum()),
                     "max_abs_pair_prob_diff": float(np.abs(r32.matrix - r16.matrix).max()),
                     "pair_f1_fp32": scores["fp32"][-1]["pair"]["f1"], "pair_f1_bf16": scores["bf16"][-1]["pair"]["f1"]})
        print(json.dumps(rows[-1]), flush=True)
    summary = {
        "protocol": f"{Path(split).name}, {len(folds)} folds, test documents, models of {args.run} (dev-selected)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
        "pairs_fp32": sum(r["pairs_fp32"] for r in rows), "pairs_in_one_only": sum(r["pairs_in_one_only"] for r in rows),
        "emotion_clauses_flipped": sum(r["emotion_clauses_flipped"] for r in rows),
        "cause_clauses_flipped": sum(r["cause_clauses_flipped"] for r in rows),
        "max_abs_pair_prob_diff": max(r["max_abs_pair_prob_diff"] for r in rows),
        "mean": {p: mean_std(scores[p])[0] for p in scores}, "std": {p: mean_std(scores[p])[1] for p in scores},
        "per_fold": rows}
    f32, f16 = (summary["mean"][p]["pair"]["f1"] for p in ("fp32", "bf16"))
    print(f"{summary['protocol']}: pair F1 fp32 {f32:.4f} ± {summary['std']['fp32']['pair']['f1']:.4f}, bf16 "
          f"{f16:.4f} ± {summary['std']['bf16']['pair']['f1']:.4f} (mean ± std over folds); "
          f"{summary['pairs_in_one_only']} of {summary['pairs_fp32']} pairs predicted by one precision only")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
