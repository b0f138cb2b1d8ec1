"""Command-line pieces shared by every subcommand (``ecpe.cli`` and the modules that add subcommands):
the one-line error, where the data is, the device flag, and which ``ecpe train`` flag applies to which model.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

from .errors import ECPEError
from .cache import default_model_dir
from .config import ConfigError, TrainConfig, from_dict
from .data.corpus import find_folds, read_documents
from .data.download import ensure_dataset
from .data.lang import CHINESE, check_language_code, detect_language, is_chinese, language_name, same_language
from .data.text import SEGMENTER_LANGUAGES
from .embeddings import SOURCE_LANGUAGES, SOURCES, source_parts
from .lexicon import LEXICON_LANGUAGES
from .models import MODELS, model_class

__all__ = ["PRESETS", "PRESETS_NOT_CHINESE", "preset_settings", "CLIError", "resolve_data", "split_folder",
           "add_split_arguments", "add_model_argument", "corpus_language", "check_resources", "default_segmenter", "parse_folds", "add_device_argument",
           "add_precision_argument", "train_model_config", "train_config", "train_config_kwargs", "MODEL_FLAGS",
           "TRAINER_FLAGS", "add_model_arguments"]


# named configurations of `ecpe train`: defaults for these flags (argparse dests); flags given on the command
# line still win. "best": the single model chosen on dev among those measured (docs/accuracy.md): word2vec vectors
# of the packaged Chinese corpora with an open vocabulary, ECPE-MLL-style window heads of +-3 clauses (they raise
# dev pair F1 over 3 seeds of split10, p = 0.01, and on split20's valid files, p = 0.006), and the DUTIR/HowNet
# lexicon's clause indicators (they raise dev pair F1 over 3 seeds of split10, p = 0.0015, and the valid files of
# split20, 2 seeds, p = 0.0005); `--lexicon none` leaves the lexicon out.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # the paper's E2EECPE with our defaults (word2vec on each fold's training documents)
    "best": {"embeddings": "corpus", "open_vocab": -1, "pair_scorer": "biaffine+window", "max_distance": 3,
             "lexicon": "dutir"},
}
# "student": the best recipe, trained on gold + teacher-labelled transfer documents; `ecpe train --preset student`
# also trains the teachers (--teacher-seeds, unless --teacher is given) and builds the transfer set (docs/student.md).
# Transfer weight 0.1: mean dev pair F1 no lower than at weight 1 over 40 folds (split10 twice, split20; a tie,
# +0.0004, p = 0.8) at no more training time. A string, so that argparse reads it as --transfer-weight 0.1.
PRESETS["student"] = {**PRESETS["best"], "transfer": "auto", "transfer_weight": "0.1"}
# a preset for a corpus that is not Chinese: the same recipe without the Chinese resources (vectors from the
# corpus's own training text instead of the packaged Chinese news)
PRESETS_NOT_CHINESE: dict[str, dict[str, Any]] = {
    "best": {"embeddings": "train", "open_vocab": -1, "pair_scorer": "biaffine+window", "max_distance": 3},
}


def preset_settings(name: str, lang: str = CHINESE) -> dict[str, Any]:
    """The flags a preset sets for a corpus of language ``lang`` (see :data:`PRESETS_NOT_CHINESE`)."""
    if is_chinese(lang):
        return PRESETS[name]
    return PRESETS_NOT_CHINESE.get(name, PRESETS[name])


class CLIError(ECPEError):
    """An error to show the user as one line, without a traceback."""


def resolve_data(path: str | None) -> Path:
    """``--data PATH``, else ``$ECPE_DATA``, else the user cache (downloaded on first use)."""
    if path:
        p = Path(path)
        if not p.exists():
            raise CLIError(f"data not found: {p}")
        return p
    env = os.environ.get("ECPE_DATA")
    if env:
        p = Path(env)
        if not p.exists():
            raise CLIError(f"$ECPE_DATA points to a missing path: {p}")
        return p
    return ensure_dataset()


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--split`` and ``--folds``, as the commands that work fold by fold take them."""
    parser.add_argument("--data", help="dataset folder (holding split10/, split20/) or a split folder "
                                       "(default: $ECPE_DATA, else the user cache)")
    parser.add_argument("--split", default="split10", help="split folder name (default split10)")
    parser.add_argument("--folds", default="all", help="'all' or a comma-separated list like 1,2 (default all)")


def split_folder(data: Path, split: str) -> Path:
    """The split folder of ``--data`` and ``--split`` (``--data`` may name the split folder itself)."""
    return data / split if (data / split).is_dir() else data


def corpus_language(split_dir: Path, lang: str | None = None) -> tuple[str, str]:
    """(language code, where it comes from) of a split: ``--lang`` when given, else detected from the first
    fold's training file (:func:`ecpe.data.lang.detect_language`)."""
    if lang:
        try:
            return check_language_code(lang), "--lang"
        except ValueError as e:
            raise CLIError(f"--lang: {e}") from None
    try:
        path = split_dir / f"fold{find_folds(split_dir)[0]}_train.txt"
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None
    return detect_language(read_documents(path)), f"detected from {path.name}"


def check_resources(args: argparse.Namespace, lang: str, source: str) -> None:
    """Refuse, in one line, the resources of ``ecpe train``'s flags that are made for another language than the
    corpus's (the packaged vectors, corpora and lexicon and the jieba segmenters are Chinese)."""
    named = [("--embeddings", p, SOURCE_LANGUAGES.get(p)) for p in source_parts(args.embeddings)]
    if getattr(args, "lexicon", None):
        named.append(("--lexicon", args.lexicon, LEXICON_LANGUAGES.get(args.lexicon)))
    if args.segmenter:
        named.append(("--segmenter", args.segmenter, SEGMENTER_LANGUAGES.get(args.segmenter)))
    wrong = [(flag, value, code) for flag, value, code in named if code and not same_language(code, lang)]
    if wrong:
        instead = dict.fromkeys(_INSTEAD[flag] for flag, _, _ in wrong)
        raise CLIError(", ".join(f"{flag} {value} is {language_name(code)}" for flag, value, code in wrong)
                       + f", but this corpus is {language_name(lang)} ({source}; --lang to say otherwise): use "
                       + " and ".join(instead))


_INSTEAD = {"--embeddings": "--embeddings train (or a vectors file of the corpus's language)",
            "--lexicon": "--lexicon none", "--segmenter": "--segmenter whitespace"}


def default_segmenter(lang: str) -> str:
    """How raw text is cut into words at prediction, when ``--segmenter`` is not given: jieba for Chinese, spaces
    and punctuation otherwise."""
    return "jieba" if is_chinese(lang) else "whitespace"


def parse_folds(spec: str, available: list[int]) -> list[int]:
    if spec == "all":
        return available
    try:
        folds = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--folds must be 'all' or comma-separated numbers like 1,2, got {spec!r}") from None
    missing = [k for k in folds if k not in available]
    if missing or not folds:
        raise CLIError(f"fold(s) {missing or spec} not in the split (available: {available[0]}..{available[-1]})")
    return folds


def add_model_argument(parser: argparse.ArgumentParser, several: str) -> None:
    """``--model``, repeatable, for the commands that find the model when none is named (``predict``, ``serve``):
    ``several`` says what giving it several times does."""
    parser.add_argument("--model", action="append",
                        help=f"a model.pt written by ecpe train; give it several times to {several} (default: "
                             f"$ECPE_MODEL, else {default_model_dir() / 'model.pt'}, made by ecpe train --final)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu",
                        help="where the model runs: cpu (default), cuda, cuda:N, or auto (a GPU when PyTorch sees one). "
                             "Results on a GPU differ from the CPU's in float rounding")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="fp32 (default), or bf16: the model's matrix products in bfloat16 (autocast), scores "
                             "and decoding in float32. Meant for CPUs with AMX / AVX-512 BF16 (measured faster there: "
                             "docs/speed.md) and GPUs; it may be slower on CPUs without them. A few predicted pairs may "
                             "differ from fp32's (compare on your data: ecpe evaluate --precision bf16)")


# ---- which `ecpe train` flag applies to which model ---------------------------------------------------
# A model's flags are declared on its config class's fields (ecpe.config.option): name, help, choices. A flag
# applies to a model iff its config class has the field; given for another model, it is refused (see
# train_model_config).
def _declared() -> dict[str, list[tuple[type, Field]]]:
    """flag -> [(config class, field)] over the registered models' config classes, in declaration order."""
    out: dict[str, list[tuple[type, Field]]] = {}
    for cls in dict.fromkeys(m.config_class for m in MODELS.values()):
        for f in fields(cls):
            cli = f.metadata.get("cli")
            if cli:
                out.setdefault(cli["flag"] or "--" + f.name.replace("_", "-"), []).append((cls, f))
    for flag, decls in out.items():
        if len({f.name for _, f in decls}) > 1:
            raise TypeError(f"{flag} is declared for the config fields {', '.join(f.name for _, f in decls)}: one only")
    return out


def _model_flags() -> dict[str, tuple[str, str, Any]]:
    """flag -> (argparse dest, model config field, what the flag stores: None for the value given, else the
    opposite of a bool field's default)."""
    return {flag: (flag[2:].replace("-", "_"), decls[0][1].name,
                   (not decls[0][1].default) if isinstance(decls[0][1].default, bool) else None)
            for flag, decls in _declared().items()}


MODEL_FLAGS: dict[str, tuple[str, str, Any]] = _model_flags()
# the value of a flag of an optional model part (a field whose default is None) that leaves the part out, e.g.
# `--preset best --lexicon none`
NONE = "none"


def _flag_help(decls: list[tuple[type, Field]]) -> str:
    """A flag's help from its fields' (``{name}``: that field's default), each with its default; the models
    named where the flag applies to some models only or means another thing for each."""
    def text(cls, f):
        return f.metadata["cli"]["help"].format(**{g.name: g.default for g in fields(cls)})

    def default(f):
        return "" if isinstance(f.default, bool) or f.default is None else f" (default {f.default})"

    everyone = len(decls) == len(dict.fromkeys(m.config_class for m in MODELS.values()))
    if everyone and len({text(c, f) for c, f in decls}) == 1:
        if len({f.default for _, f in decls}) == 1:
            return text(*decls[0]) + default(decls[0][1])
        return text(*decls[0]) + " (default " + ", ".join(f"{f.default} for {c.models}" for c, f in decls) + ")"
    return "; ".join(f"{c.models}: {text(c, f)}{default(f)}" for c, f in decls)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``ecpe train``'s model flags (:data:`MODEL_FLAGS`), from the fields of the models' config classes."""
    for flag, decls in _declared().items():
        f = decls[0][1]
        cli, dest = f.metadata["cli"], MODEL_FLAGS[flag][0]
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=dest, action="store_true", help=_flag_help(decls))
            continue
        kind = type(f.default) if f.default is not None else str
        choices = cli["choices"]
        if f.default is None and choices:  # an optional part: NONE leaves out what a preset put in
            choices = (*choices, NONE)
        parser.add_argument(flag, dest=dest, type=kind, choices=choices, metavar=cli["metavar"],
                            help=_flag_help(decls))


# Trainer settings that only single-stage models read (a two-stage model's stages have their own batch
# size, learning rate and L2 in its config, and train every epoch)
TRAINER_FLAGS: dict[str, str] = {"--patience": "patience", "--batch-size": "batch_size", "--lr": "lr", "--l2": "l2",
                                 "--ema": "ema", "--refit": "refit"}


def _given(args: argparse.Namespace, dest: str) -> bool:
    v = getattr(args, dest)
    return v is not None and v is not False


def _models_with(field: str) -> list[str]:
    return sorted(n for n, cls in MODELS.items() if field in {f.name for f in fields(cls.config_class)})


def train_model_config(args: argparse.Namespace) -> dict[str, Any]:
    """The model config dict of ``ecpe train``'s flags: only the flags given, each checked to apply to
    ``args.model`` (else :class:`CLIError` naming the flag and the model)."""
    try:
        cls = model_class(args.model)
    except ValueError as e:
        raise CLIError(str(e)) from None
    names = {f.name for f in fields(cls.config_class)}
    config: dict[str, Any] = {}
    flags = {}
    for flag, (dest, field, value) in MODEL_FLAGS.items():
        if not _given(args, dest):
            continue
        if field not in names:
            raise CLIError(f"{flag} does not apply to model {args.model!r} (it applies to: "
                           f"{', '.join(_models_with(field))})")
        given = getattr(args, dest) if value is None else value
        config[field], flags[field] = None if given == NONE else given, flag
    try:
        from_dict(cls.config_class, config)
    except ConfigError as e:  # a value its field refuses, reported under the flag's name
        if e.field not in flags:
            raise CLIError(str(e)) from None
        raise CLIError(f"{flags[e.field]} must be {e.expected}, got {e.value!r}") from None
    if cls.schedule != "single":
        for flag, dest in TRAINER_FLAGS.items():
            if _given(args, dest):
                raise CLIError(f"{flag} does not apply to model {args.model!r}: its stages take their batch size, "
                               "learning rate and L2 from its config and train every epoch (--epochs caps each stage)")
    return config


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of ``ecpe train``'s flags; a value its field refuses is reported under the flag's name."""
    try:
        return TrainConfig(**train_config_kwargs(args))
    except ConfigError as e:
        flag = _TRAIN_FIELD_FLAGS.get(e.field, "--" + e.field.replace("_", "-"))
        raise CLIError(f"{flag} must be {e.expected}, got {e.value!r}") from None


_TRAIN_FIELD_FLAGS = {"corpus_w2v_epochs": "--corpus-epochs"}  # fields whose flag is not "--" + the field's name


def train_config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``TrainConfig`` keyword arguments of ``ecpe train``'s flags (flags not given keep the defaults)."""
    kwargs = {dest: getattr(args, dest) for dest in ("epochs", *TRAINER_FLAGS.values()) if getattr(args, dest) is not None}
    for flag, dest, field in (("--corpus-epochs", "corpus_epochs", "corpus_w2v_epochs"),
                              ("--corpus-window", "corpus_window", "corpus_window")):
        if getattr(args, dest, None) is not None:
            if "corpus" not in source_parts(args.embeddings):
                raise CLIError(f"{flag} applies to --embeddings corpus (given: {args.embeddings or 'train'})")
            kwargs[field] = getattr(args, dest)
    if args.embeddings and source_parts(args.embeddings) == [args.embeddings] and args.embeddings not in SOURCES \
            and not Path(args.embeddings).exists():
        raise CLIError(f"--embeddings {args.embeddings}: neither a vectors file nor a source ({', '.join(SOURCES)}, "
                       "or several joined by +, e.g. corpus+cnsyn)")
    return {**kwargs, "seed": args.seed, "dev_seed": args.dev_seed, "select_on": args.select_on,
            "embeddings": args.embeddings,
            "threads": args.threads, "min_freq": args.min_freq, "device": args.device, "open_vocab": args.open_vocab,
            "teachers": tuple(args.teacher or ()), **({"distill_weight": args.distill_weight}
                                                     if args.distill_weight is not None else {}),
            **{f: getattr(args, f) for f in ("transfer", "transfer_docs", "transfer_weight", "transfer_batch_size",
                                             "pseudo_threshold", "precision") if getattr(args, f, None) is not None}}
