"""``ecpe evaluate``, ``ecpe predict`` and ``ecpe info``: what a saved model does for a user."""
from __future__ import annotations

import json
import sys
from pathlib import Path


from ..batch.command import predict_command
from ..cache import find_model
from ..inference.card import model_card
from ..data.corpus import read_documents
from ..inference import Ensemble, Extractor, InputError, load_models, predict_documents, set_clauses
from ..inference.inputs import check_text
from ..metrics import score
from ..options import (CLIError)
from .report import print_metrics


# ---- evaluate -------------------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    model, ckpts = load_models(args.model, device=args.device, precision=args.precision)
    ckpt = ckpts[0]
    if args.clauses:
        try:
            set_clauses(model, args.clauses)
        except ValueError:
            raise CLIError(f"--clauses applies to e2eecpe models, not {ckpt['model']!r}") from None
    path = Path(args.data)
    files = sorted(path.glob("fold*_test.txt")) if path.is_dir() else [path]
    if not files:
        raise CLIError(f"no documents: {path} holds no foldK_test.txt files")
    meta = ckpt.get("meta", {})
    for f in files:
        docs = read_documents(f)
        metrics = score(docs, predict_documents(model, docs, threshold=args.threshold))
        what = f"ensemble of {len(model)} {ckpt['model']} models" if isinstance(model, Ensemble) else f"model {ckpt['model']}"
        what += f" run in {args.precision}" if args.precision != "fp32" else ""
        print_metrics(f"{f} ({len(docs)} documents; {what} trained {meta.get('protocol', '?')}, "
                      f"{meta.get('split', '?')} fold {meta.get('fold', '?')}):", metrics)
        if args.json:
            print(json.dumps({"file": str(f), "precision": args.precision, **metrics}, ensure_ascii=False))
    return 0


# ---- predict --------------------------------------------------------------------------------------
def cmd_predict(args) -> int:
    args.model = args.model or [str(find_model())]
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.input:  # files and directories of JSON lines: error isolation, resumable shards, Ray (ecpe.batch)
        return predict_command(args)
    if not args.text:
        raise CLIError("give a text to analyse or --input FILE|DIR (JSON lines; '-' for standard input)")
    for i, t in enumerate(args.text, 1):
        try:
            check_text(t, f"text {i}")
        except InputError as e:  # bytes that were not UTF-8 reach argv as lone surrogates
            raise CLIError(f"{e} (the command line was not UTF-8)") from None
    ex = Extractor.load(args.model, device=args.device, segmenter=args.segmenter,  # several: an ensemble
                        batch_size=args.batch_size, precision=args.precision)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for t in args.text:
            try:
                r = ex.extract(t, threshold=args.threshold, matrix=args.matrix)
            except InputError as e:
                raise CLIError(str(e)) from None
            out.write(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


# ---- info -----------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    _, (ckpt,) = load_models([args.model or find_model()])
    card = model_card(ckpt)
    if args.json:
        print(json.dumps(card, ensure_ascii=False, indent=1))
    else:
        width = max(map(len, card))
        for key, value in card.items():
            print(f"{key:<{width}}  {value}")
    return 0
