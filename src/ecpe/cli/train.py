"""``ecpe train``: the checks of its flags, the corpus's language, cross-validation runs, seed ensembles, students
(one, or one per ``--transfer-weight`` chosen per fold on dev) and the model for use (``--final``); ``ecpe choose``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from .. import transfer
from ..data.lang import is_chinese
from ..cache import default_model_dir
from ..devices import resolve_device, resolve_precision
from ..config import TrainConfig, from_dict
from ..data.corpus import find_folds
from ..inference import evaluate_runs
from ..models import model_class
from ..data.lang import language_name
from ..options import PRESETS, preset_settings
from ..options import (CLIError, check_resources,
                      corpus_language, default_segmenter, parse_folds, resolve_data, split_folder, train_config,
                      train_model_config)
from ..training import (CHOICE_RULE, NO_TEST, RunSpec, check_choice_folder, choose_per_fold, protocol_label,
                       recipe_differences, train_final, train_recipe, train_run, train_runs, weight_folder)
from .report import print_ensemble, print_metrics

log = logging.getLogger("ecpe")


def _flags(settings: dict) -> str:
    return " ".join(f"--{d.replace('_', '-')} {v}" for d, v in settings.items())


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
    _settle_weights(args)
    _check_student_flags(args)
    if args.out is None:
        if not args.final:
            raise CLIError("--out is required (a run folder), except with --final (default: the default model, "
                           f"{default_model_dir()})")
        args.out = str(default_model_dir())
    if args.precision == "auto":  # settled here, on the machine that starts the run, and recorded as such
        args.precision = resolve_precision("auto", resolve_device(args.device or "cpu"))
        print(f"--precision auto: {args.precision} (bfloat16 products "
              f"{'native' if args.precision == 'bf16' else 'not native'} on {args.device or 'cpu'})", file=sys.stderr)
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


def _weights(text: str) -> list[float]:
    """``--transfer-weight``'s value: one weight, or several separated by commas."""
    try:
        return [float(w) for w in text.split(",") if w.strip()] or [float(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a weight or weights like 0,0.1,1, got {text!r}") from None


def _settle_weights(args) -> None:
    """``--transfer-weight W1,W2,...``: ``args.transfer_weights`` the candidates' weights (None for one weight)
    and ``args.transfer_weight`` the first, for the checks of one run."""
    weights = args.transfer_weight
    if weights is not None and not isinstance(weights, list):  # settled already
        return
    args.transfer_weights = weights if weights and len(weights) > 1 else None
    args.transfer_weight = weights[0] if weights else None
    if not args.transfer_weights:
        return
    if len(set(weights)) != len(weights):
        raise CLIError(f"--transfer-weight {','.join(f'{w:g}' for w in weights)}: a weight is given twice")
    if min(weights) < 0:
        raise CLIError(f"--transfer-weight must be zero or more, got {min(weights)!r}")
    if args.transfer_docs == 0:
        raise CLIError("--transfer-weight with several weights needs transfer documents: not with --transfer-docs 0")


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
        if args.transfer_weights:
            check_choice_folder(args.out, overwrite=args.overwrite)  # before hours of training, not after
        cfg = _transfer_folder(args, split_dir, folds, cfg, Path(args.out) / "transfer", Path(args.out))
    return _report_student(args, split_dir, folds, model_config, cfg, on_fold, Path(args.out))


def _report_student(args, split_dir, folds, model_config, cfg, on_fold, out: Path) -> int:
    """One run into ``out``; with several ``--transfer-weight``s, one candidate per weight (``out/weightW``, as
    one pool of fold tasks) and per fold the candidate of highest dev pair F1 kept in ``out``."""
    weights = getattr(args, "transfer_weights", None)
    if not weights:
        return _report_run(args, split_dir, folds, model_config, cfg, on_fold, out)
    check_choice_folder(out, overwrite=args.overwrite)
    specs = [RunSpec(args.model, split_dir, folds, model_config, dataclasses.replace(cfg, transfer_weight=w),
                     out / weight_folder(w), {"segmenter": args.segmenter}, _about(args, split_dir)) for w in weights]
    print(f"candidates: --transfer-weight {', '.join(f'{w:g}' for w in weights)} -> "
          f"{', '.join(str(s.run_dir) for s in specs)}; kept per fold in {out}: {CHOICE_RULE}", file=sys.stderr)
    summaries = train_runs(specs, progress=not args.quiet, on_fold=on_fold, jobs=args.jobs, overwrite=args.overwrite,
                           engine=args.engine, address=args.address)
    failures = []
    for w, summary in zip(weights, summaries):
        print_metrics(f"--transfer-weight {w:g} — {summary['protocol']}, {summary['split']}, mean ± std over folds "
                      f"{','.join(map(str, summary['folds']))}:", summary["mean"], summary["std"])
        failures += [f"--transfer-weight {w:g} fold {f['fold']}: {f['error']}" for f in summary.get("failures", [])]
    trained = [len(s["last_invocation"]["folds_trained"]) for s in summaries]
    if sum(trained):
        print(f"elapsed: {summaries[0]['last_invocation']['elapsed_seconds'] / 60:.1f} min for the {sum(trained)} "
              f"candidate fold(s) trained now (--jobs {args.jobs})", file=sys.stderr)
    code = _report_choice([s.run_dir for s in specs], out, args.overwrite)
    for line in failures:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failures else code


def _report_choice(runs, out: Path, overwrite: bool, folds=None) -> int:
    """:func:`choose_per_fold` of ``runs`` into ``out``, printed: which candidate each fold kept, and the figures."""
    summary = choose_per_fold(runs, out, folds, overwrite)
    for k, lacking in summary.get("left_out", {}).items():
        print(f"fold {k}: left out, not finished in {', '.join(lacking)}", file=sys.stderr)
    for f in summary["per_fold"]:
        dev = ", ".join(f"{Path(r).name} {v:.4f}" for r, v in f["chosen"]["dev_pair_f1"].items())
        print(f"fold {f['fold']}: {f['chosen']['run']} (dev pair F1 {dev}; test pair F1 {f['pair']['f1']:.4f})",
              file=sys.stderr)
    print_metrics(f"chosen per fold on dev — {summary['protocol']}, {summary['split']}, mean ± std over folds "
                  f"{','.join(map(str, summary['folds']))}:", summary["mean"], summary["std"])
    print("times chosen: " + ", ".join(f"{r} {n}" for r, n in summary["times_chosen"].items()))
    print(f"results: {out / 'results.json'}")
    return 0


def cmd_choose(args) -> int:
    folds = None
    if args.folds != "all":
        try:
            folds = [int(x) for x in args.folds.split(",") if x.strip()]
        except ValueError:
            raise CLIError(f"--folds must be 'all' or comma-separated numbers like 1,2, got {args.folds!r}") from None
    return _report_choice(args.runs, Path(args.out), args.overwrite, folds)


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
                                            device=cfg.device, progress=not args.quiet, dev_seed=cfg.dev_seed)
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
    if getattr(args, "transfer_weights", None):
        check_choice_folder(out / "student", overwrite=args.overwrite)  # before the teachers train
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
        code = _report_student(args, split_dir, folds, model_config, round_cfg, on_fold, student_dir)
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
