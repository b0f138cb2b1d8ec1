"""Configurations as dataclasses; defaults are the paper's values (Song et al. 2020, §4.2)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["E2EConfig", "TrainConfig", "ConfigError", "from_dict", "to_dict", "CLAUSE_ENCODERS", "CLAUSE_CONTEXTS",
           "PAIR_SCORERS", "PAIR_LOSSES", "CLAUSE_RULES"]

# the values of E2EConfig's choice fields (the first is the paper's model)
CLAUSE_ENCODERS = ("cnn", "lstm", "cnn+lstm")
CLAUSE_CONTEXTS = ("bilstm", "bilstm+attention", "bilstm+emotion")
PAIR_SCORERS = ("biaffine", "biaffine+window")
PAIR_LOSSES = ("bce", "bce+rank")
CLAUSE_RULES = ("heads", "heads+pairs")


@dataclass
class E2EConfig:
    """E2EECPE hyper-parameters (§4.2)."""

    embed_dim: int = 200          # d_e
    kernel_sizes: tuple[int, ...] = (2, 3, 4, 5)
    filters: int = 50             # d_c
    hidden: int = 300             # d_h, per direction
    vertex_dim: int = 100         # d_z
    dropout: float = 0.5          # on embeddings and on the clause encoder's output
    eps: float = 1.0              # smoothing of eq. 9
    threshold: float = 0.3        # eta, eq. 18
    beta: float = 1.0             # weight of the auxiliary loss, eq. 17
    use_aux: bool = True          # False: "w/o auxiliary" ablation
    use_position: bool = True     # False: "w/o position" ablation
    freeze_embeddings: bool = False
    max_clause_len: int = 64      # words kept per clause
    word_dropout: float = 1.0     # alpha: a training word seen n times becomes <unk> with probability alpha / (alpha + n)
    char_backoff: bool = False    # unknown (and word-dropped) words: mean of their characters' vectors, not <unk>
    lexicon: str | None = None    # "dutir": per-clause emotion-lexicon indicators beside the clause CNN (ecpe.lexicon)
    clause_encoder: str = "cnn"   # "cnn" (the paper, eqs. 1-3), "lstm" (word BiLSTM + attention, Xia & Ding 2019), "cnn+lstm"
    word_hidden: int = 100        # the "lstm" clause encoder: word LSTM units per direction (clause vectors 2x this)
    clause_context: str = "bilstm"  # after eq. 4: "bilstm" (the paper), "bilstm+attention" (+ clause self-attention),
                                    # "bilstm+emotion" (the cause side also attends towards likely emotion clauses)
    attention_heads: int = 4      # the clause attention of clause_context != "bilstm" (size vertex_dim in all)
    pair_scorer: str = "biaffine"  # "biaffine" (eq. 7) or "biaffine+window" (+ ECPE-MLL's window heads)
    max_distance: int = 10        # the window heads: offsets |p - q| beyond this share the outermost classifiers
    pair_loss: str = "bce"        # "bce" (eq. 15) or "bce+rank" (+ a listwise term per document, models.e2eecpe.variants)
    rank_weight: float = 1.0      # weight of that listwise term
    clauses: str = "heads"        # emotion / cause clauses: "heads" (the auxiliary heads, as the paper's Table 2) or
                                  # "heads+pairs" (also the two clauses of every predicted pair)

    def __post_init__(self):
        _check(self, _E2E_CHECKS)
        if self.pair_scorer != "biaffine" and self.max_distance < 1:
            raise ConfigError(f"E2EConfig.max_distance must be at least 1 with pair_scorer {self.pair_scorer!r}, "
                              f"got {self.max_distance!r}", field="max_distance", expected="at least 1",
                              value=self.max_distance)
        if self.clause_context == "bilstm+emotion" and not self.use_aux:
            raise ConfigError("E2EConfig.clause_context 'bilstm+emotion' reads the auxiliary emotion head: it needs "
                              "use_aux", field="clause_context", expected="not 'bilstm+emotion' without use_aux",
                              value=self.clause_context)


def _one_of(choices: tuple[str, ...]) -> tuple[Any, str]:
    return (lambda v: v in choices), "one of " + ", ".join(choices)


# what each E2EConfig field accepts (the checks of several fields together are in __post_init__)
_E2E_CHECKS: dict[str, tuple[Any, str]] = {
    "beta": (lambda v: v >= 0, "at least 0"),
    "clause_encoder": _one_of(CLAUSE_ENCODERS),
    "clause_context": _one_of(CLAUSE_CONTEXTS),
    "pair_scorer": _one_of(PAIR_SCORERS),
    "pair_loss": _one_of(PAIR_LOSSES),
    "clauses": _one_of(CLAUSE_RULES),
}


def _check(config, checks: dict[str, tuple[Any, str]]) -> None:
    """ConfigError naming the first field of ``config`` whose value its check refuses."""
    for name, (ok, expected) in checks.items():
        value = getattr(config, name)
        if not ok(value):
            raise ConfigError(f"{type(config).__name__}.{name} must be {expected}, got {value!r}", field=name,
                              expected=expected, value=value)


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
    threads: int = 0              # torch threads; 0 = all cores
    device: str = "cpu"           # "cpu", "cuda", "cuda:N" or "auto" (a GPU when there is one)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _check(self, _TRAIN_CHECKS)


# what each TrainConfig field accepts: a value outside it would train something other than what was asked
# (select_on="valid" would silently select on the test fold, ema=1 keep the first step's weights forever)
_TRAIN_CHECKS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "patience": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "lr": (lambda v: v > 0, "positive"),
    "l2": (lambda v: v >= 0, "zero or more"),
    "ema": (lambda v: 0 <= v < 1, "a decay per step in [0, 1) (0: off)"),
    "select_on": (lambda v: v in ("dev", "test"), "'dev' or 'test'"),
    "dev_fraction": (lambda v: 0 < v < 1, "a share in (0, 1)"),
    "min_freq": (lambda v: v >= 1, "at least 1"),
    "w2v_epochs": (lambda v: v >= 1, "at least 1"),
    "open_vocab": (lambda v: v >= -1, "a number of words, or -1 for all"),
    "corpus_w2v_epochs": (lambda v: v >= 1, "at least 1"),
    "corpus_min_count": (lambda v: v >= 1, "at least 1"),
    "corpus_window": (lambda v: v >= 1, "at least 1"),
    "distill_weight": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "threads": (lambda v: v >= 0, "zero (all cores) or more"),
}


class ConfigError(ValueError):
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
