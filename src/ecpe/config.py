"""Configurations as dataclasses; defaults are the paper's values (Song et al. 2020, §4.2)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar

from .errors import UsageError

__all__ = ["E2EConfig", "TrainConfig", "ConfigError", "from_dict", "to_dict", "option", "check_options",
           "CLAUSE_ENCODERS", "CLAUSE_CONTEXTS", "PAIR_SCORERS", "PAIR_LOSSES", "CLAUSE_RULES", "TRANSFER_WEIGHT"]

# what TrainConfig.transfer_weight None means: a transfer clause weighs as much as a gold clause
TRANSFER_WEIGHT = 1.0

# the values of E2EConfig's choice fields (the first is the paper's model)
CLAUSE_ENCODERS = ("cnn", "lstm", "cnn+lstm")
CLAUSE_CONTEXTS = ("bilstm", "bilstm+attention", "bilstm+emotion")
PAIR_SCORERS = ("biaffine", "biaffine+window")
PAIR_LOSSES = ("bce", "bce+rank")
CLAUSE_RULES = ("heads", "heads+pairs")


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple[str, ...] | None = None,
           metavar: str | None = None, check: tuple[Callable[[Any], bool], str] | None = None):
    """A model config field that an ``ecpe train`` flag sets, declared once (``ecpe.options`` makes the flag).

    Args:
        default: the field's default (shown in ``--help``).
        help: what the flag does; ``{name}`` stands for the default of the config's field ``name``.
        flag: the flag, ``--`` + the field's name with dashes unless given. A bool field's flag takes no
            value and sets the opposite of its default (``--no-aux``: ``use_aux=False``).
        choices: the values the field accepts.
        metavar: the value's name in ``--help``.
        check: (accepts(value), what it accepts), run by :func:`check_options`.
    """
    return field(default=default, metadata={"cli": {"help": help, "flag": flag, "choices": choices,
                                                    "metavar": metavar, "check": check}})


def check_options(config) -> None:
    """:class:`ConfigError` naming the first field declared with :func:`option` whose value is not one of its
    choices or fails its check."""
    for f in fields(config):
        cli = f.metadata.get("cli")
        if not cli:
            continue
        value = getattr(config, f.name)
        if value is None and f.default is None:  # an optional field left unset
            continue
        checks = [cli["check"]] if cli["check"] else []
        if cli["choices"]:
            checks.append((lambda v, choices=cli["choices"]: v in choices, "one of " + ", ".join(cli["choices"])))
        for ok, expected in checks:
            if not ok(value):
                raise ConfigError(f"{type(config).__name__}.{f.name} must be {expected}, got {value!r}", field=f.name,
                                  expected=expected, value=value)


@dataclass
class E2EConfig:
    """E2EECPE hyper-parameters (§4.2); the fields set by a flag of ``ecpe train`` say so (:func:`option`)."""

    models: ClassVar[str] = "E2EECPE"  # whom the flags' help names

    embed_dim: int = option(200, "word vector size")  # d_e
    kernel_sizes: tuple[int, ...] = (2, 3, 4, 5)
    filters: int = option(50, "CNN filters per kernel width, d_c", metavar="D_C")
    hidden: int = option(300, "clause BiLSTM units per direction, d_h; smaller is faster, see README 'Speed'",
                         metavar="D_H")
    vertex_dim: int = option(100, "vertex and auxiliary layer size, d_z", metavar="D_Z")
    dropout: float = 0.5          # on embeddings and on the clause encoder's output
    eps: float = 1.0              # smoothing of eq. 9
    threshold: float = option(0.3, "pair threshold eta on M-hat, eq. 18")
    beta: float = option(1.0, "weight beta of the auxiliary emotion and cause losses against the pair loss, eq. 17",
                         check=(lambda v: v >= 0, "at least 0"))
    use_aux: bool = option(True, "ablation: without the auxiliary tasks", flag="--no-aux")
    use_position: bool = option(True, "ablation: without the position weight matrix", flag="--no-position")
    freeze_embeddings: bool = option(False, "keep word vectors fixed (the paper's code did; the two-stage models "
                                            "always do)")
    max_clause_len: int = 64      # words kept per clause
    word_dropout: float = option(1.0, "a training word seen n times is replaced by <unk> with probability "
                                      "ALPHA / (ALPHA + n); 0 = off, as in the paper", metavar="ALPHA")
    char_backoff: bool = option(False, "an unknown word (and a word-dropped training word) is the mean of the "
                                       "vectors of its characters that are vocabulary words, instead of <unk>")
    lexicon: str | None = option(None, "per-clause emotion-lexicon indicators (DUTIR's 7 emotion classes, HowNet "
                                       "polarity, negation and degree words) beside the clause encoder; needs "
                                       "ecpe[zh-resources]; none: without (--preset best has dutir)",
                      choices=("dutir",))
    clause_encoder: str = option("cnn", "how a clause's words become its vector: cnn, the paper's CNN (eqs. 1-3); lstm, "
                                        "a word-level BiLSTM ({word_hidden} units per direction) with attention pooling, "
                                        "as the two-stage baselines of Xia & Ding 2019 (slower); or cnn+lstm, both "
                                        "vectors side by side", choices=CLAUSE_ENCODERS)
    word_hidden: int = 100        # the "lstm" clause encoder: word LSTM units per direction (clause vectors 2x this)
    clause_context: str = option("bilstm", "what relates a document's clauses before the vertices of eqs. 5-6: "
                                           "bilstm, the paper's clause BiLSTM (eq. 4); bilstm+attention, plus a clause "
                                           "self-attention layer ({attention_heads} heads), as later models relate "
                                           "clauses by attention; or bilstm+emotion, the cause side also attends to "
                                           "the document's clauses weighted by the emotion head's probabilities, as "
                                           "Inter-EC feeds emotion predictions to cause extraction",
                                 choices=CLAUSE_CONTEXTS)
    attention_heads: int = 4      # the clause attention of clause_context != "bilstm" (size vertex_dim in all)
    pair_scorer: str = option("biaffine", "how a pair (p, q) is scored before eq. 8: biaffine (the paper's eq. 7) or "
                                          "biaffine+window (plus ECPE-MLL's window multi-label heads: each clause, as "
                                          "emotion and as cause, has one linear classifier per offset of its window, "
                                          "--max-distance K; ECPE-MLL used K = 3). The position prior A of eq. 9 "
                                          "stays either way", choices=PAIR_SCORERS)
    max_distance: int = option(10, "with --pair-scorer biaffine+window: offsets |p - q| beyond K share the "
                                   "outermost classifiers", metavar="K")
    pair_loss: str = option("bce", "bce, the paper's eq. 15 (each pair cell judged alone), or bce+rank, plus a "
                                   "listwise term per document: its gold pairs should hold the mass of softmax(log "
                                   "M-hat) over the document's pairs, as RankCP ranks candidate pairs",
                            choices=PAIR_LOSSES)
    rank_weight: float = 1.0      # weight of that listwise term
    clauses: str = option("heads", "which clauses are reported as emotion and cause clauses: heads, the auxiliary "
                                   "heads' (probability > 1/2), as the paper's Table 2; or heads+pairs, also the "
                                   "emotion and the cause clause of every predicted pair, so that no pair names a "
                                   "clause the lists lack", choices=CLAUSE_RULES)

    def __post_init__(self):
        check_options(self)
        if self.pair_scorer != "biaffine" and self.max_distance < 1:
            raise ConfigError(f"E2EConfig.max_distance must be at least 1 with pair_scorer {self.pair_scorer!r}, "
                              f"got {self.max_distance!r}", field="max_distance", expected="at least 1",
                              value=self.max_distance)
        if self.clause_context == "bilstm+emotion" and not self.use_aux:
            raise ConfigError("E2EConfig.clause_context 'bilstm+emotion' reads the auxiliary emotion head: it needs "
                              "use_aux", field="clause_context",
                              expected="a context that does not read the emotion head, without the auxiliary heads",
                              value=self.clause_context)


@dataclass
class TrainConfig:
    """Optimisation and model selection."""

    epochs: int = 30
    patience: int = 8             # epochs without dev improvement before stopping
    batch_size: int = 32
    lr: float = 1e-3
    l2: float = 1e-5              # lambda of eq. 17, on all weights except the word embeddings
    ema: float = 0.0              # > 0: score and keep an exponential moving average of the weights (this decay per step)
    refit: bool = False           # True: retrain a fresh model on train + dev for the dev-chosen epoch count, keep it
    seed: int = 1
    dev_seed: int | None = None   # split10: the seed that draws the dev share (None: seed); models of several seeds
    #                               that share one dev share have all left it out (teachers of a student, --seeds)
    select_on: str = "dev"        # "dev" (honest) or "test" (the paper's protocol)
    dev_fraction: float = 0.1     # split10 has no dev set: this share of training documents is held out
    min_freq: int = 1             # vocabulary: words seen at least this often in training documents
    w2v_epochs: int = 10
    embeddings: str | None = None  # a word2vec file or a source of ecpe.embeddings.SOURCES; None = "train"
    open_vocab: int = 0           # add up to this many words of the vectors that training never saw (-1: all)
    corpus_w2v_epochs: int = 5    # word2vec epochs for embeddings="corpus"
    corpus_min_count: int = 5     # embeddings="corpus": corpus words seen fewer times are dropped
    corpus_window: int = 5        # embeddings="corpus": skip-gram context window
    teachers: tuple[str, ...] = ()  # distillation: run folders whose foldK/model.pt, averaged, give soft targets
    distill_weight: float = 0.5   # targets = (1 - w) * gold + w * teachers' mean M-hat / probabilities
    # student training on teacher-labelled transfer documents (docs/student.md); None everywhere: off, and
    # recipes written before these fields existed still compare equal
    transfer: str | None = None   # folder of `ecpe transfer build --out`: foldK_transfer.jsonl.gz, foldK_targets.npz
    transfer_docs: int | None = None      # a seeded subset of this many transfer documents (None: all)
    transfer_weight: float | None = None  # weight of a transfer clause against a gold one (None: TRANSFER_WEIGHT)
    transfer_batch_size: int | None = None  # documents per transfer batch (None: TRANSFER_BATCH_SIZE)
    pseudo_threshold: float | None = None   # hard pseudo-labels: teacher probabilities >= this become 1, else 0
    threads: int = 0              # torch threads; 0 = all cores
    device: str = "cpu"           # "cpu", "cuda", "cuda:N" or "auto" (a GPU when there is one)
    precision: str = "fp32"       # training forward passes: "fp32", or "bf16" (autocast; other numerics, same accuracy)

    @property
    def dev_share_seed(self) -> int:
        """The seed that draws split10's dev share: ``dev_seed``, else ``seed``."""
        return self.seed if self.dev_seed is None else self.dev_seed

    def __post_init__(self):
        for name, (ok, expected) in _TRAIN_CHECKS.items():
            value = getattr(self, name)
            if not ok(value):
                raise ConfigError(f"TrainConfig.{name} must be {expected}, got {value!r}", field=name,
                                  expected=expected, value=value)


# what each TrainConfig field accepts: a value outside it would train something other than what was asked
# (select_on="valid" would silently select on the test fold, ema=1 keep the first step's weights forever)
_TRAIN_CHECKS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "patience": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "lr": (lambda v: v > 0, "positive"),
    "l2": (lambda v: v >= 0, "zero or more"),
    "ema": (lambda v: 0 <= v < 1, "a decay per step in [0, 1) (0: off)"),
    "dev_seed": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a seed (an integer) or None"),
    "select_on": (lambda v: v in ("dev", "test"), "'dev' or 'test'"),
    "dev_fraction": (lambda v: 0 < v < 1, "a share in (0, 1)"),
    "min_freq": (lambda v: v >= 1, "at least 1"),
    "w2v_epochs": (lambda v: v >= 1, "at least 1"),
    "open_vocab": (lambda v: v >= -1, "a number of words, or -1 for all"),
    "corpus_w2v_epochs": (lambda v: v >= 1, "at least 1"),
    "corpus_min_count": (lambda v: v >= 1, "at least 1"),
    "corpus_window": (lambda v: v >= 1, "at least 1"),
    "distill_weight": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "transfer_docs": (lambda v: v is None or v >= 0, "a number of documents, 0 or more"),
    "transfer_weight": (lambda v: v is None or v >= 0, "zero or more"),
    "transfer_batch_size": (lambda v: v is None or v >= 1, "at least 1"),
    "pseudo_threshold": (lambda v: v is None or 0 < v < 1, "a probability in (0, 1)"),
    "threads": (lambda v: v >= 0, "zero (all cores) or more"),
    "precision": (lambda v: v in ("fp32", "bf16"), "'fp32' or 'bf16'"),
}


class ConfigError(UsageError):
    """A config with keys its dataclass does not have, or a value its field does not accept (then ``field``
    names the field, ``expected`` says what it accepts and ``value`` is what it was given)."""

    def __init__(self, message: str, field: str | None = None, expected: str | None = None, value: Any = None):
        super().__init__(message)
        self.field, self.expected, self.value = field, expected, value


def from_dict(cls, data: dict[str, Any]):
    """Build a config dataclass from a dict, restoring tuples; unknown keys raise :class:`ConfigError`
    naming them (a misspelt or misplaced option never passes silently)."""
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(k for k in data if k not in names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no option(s) {', '.join(unknown)}; "
                          f"its options are {', '.join(names)}")
    kwargs = {k: tuple(v) if isinstance(v, list) and "tuple" in str(names[k].type) else v for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict[str, Any]:
    d = asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
