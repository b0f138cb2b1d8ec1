"""The two-stage baselines of Xia & Ding (2019): Indep, Inter-CE and Inter-EC, with or without the pair filter.

Stage 1 extracts emotion clauses and cause clauses with two "towers" (word BiLSTM + attention -> clause
BiLSTM -> softmax) that read the same dropped-out word vectors:

- Indep: the towers are independent (coupled only by the summed loss);
- Inter-CE: the cause tower's softmax output p^C_i is appended to the emotion tower's clause vectors;
- Inter-EC: the emotion tower's p^E_i is appended to the cause tower's clause vectors.

Stage 2 pairs every predicted emotion clause with every predicted cause clause of a document (Cartesian
product, i = j included) and keeps the candidates that a logistic "filter" accepts; the filter reads
[s_i; s_j; v_{j-i}] from a word encoder of its own and a frozen random relative-position embedding.
Without the filter, every candidate is kept.

Both stages live in one module (and one checkpoint). Stage 1 is trained first (epoch chosen by the mean
of emotion and cause F1 on the selection set); stage 2 is trained on the candidates that stage 1 predicts
on the *training* documents and chosen by pair F1 on the candidates stage 1 predicts on the selection set.
What they are and what to watch when reproducing them: ``docs/baselines.md``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import option
from ..data.batching import DocBatch, DocTensors, batch_to
from ..data.corpus import Document
from ..data.vocab import Vocab
from ..devices import model_device
from ..metrics import Prediction, score
from ..modules.rnn import AttentionClauseEncoder, BiLSTM, PackedClauses, pack_clauses, uniform_init_
from .base import Decoded, ECPEModel

__all__ = ["TwoStageConfig", "TwoStageECPE", "Indep", "InterCE", "InterEC", "ClauseExtractor", "PairFilter",
           "ClauseTensors", "CandidateTensors", "PairBatch", "candidate_pairs", "evaluate_filter", "mean_clause_f1"]


@dataclass
class TwoStageConfig:
    """Hyper-parameters of the two-stage baselines; defaults are the reference code's values.

    The ``stage*_`` settings replace the Trainer's batch size and learning rate (the command line's
    ``--batch-size`` and ``--lr`` are E2EECPE's and are refused for these models); ``TrainConfig.epochs``
    (``--epochs``) caps each stage's epochs; every epoch is trained (no early stopping).
    """

    models: ClassVar[str] = "the two-stage models"  # whom the flags' help names

    embed_dim: int = option(200, "word vector size")
    hidden: int = option(100, "word and clause LSTM units per direction", metavar="D_H")
    pos_dim: int = 50              # relative-position embedding of stage 2
    max_offset: int = 100          # position table rows: offsets -100..100 (+ clamp beyond)
    max_clause_len: int = 30       # words kept per clause
    filter: bool = option(True, "keep every candidate pair (the w/o filter rows)", flag="--no-filter")
    threshold: float = option(0.5, "the filter keeps a candidate pair whose probability is above it; 0.5 = argmax")
    tune_embeddings: bool = False  # the reference keeps the word vectors fixed
    tf_init: bool = True           # LSTM initialisation of TensorFlow's LSTMCell
    l2: float = 1e-5               # lambda * 1/2 ||W, b||^2 on the softmax layers only
    stage1_epochs: int = 15
    stage1_batch_size: int = 32
    stage1_lr: float = 0.005
    stage1_dropout: float = 0.2    # on word vectors (keep probability 0.8)
    stage2_epochs: int = 20
    stage2_batch_size: int = 32
    stage2_lr: float = 0.005
    stage2_dropout: float = 0.5    # on word vectors (keep probability 0.5)


# ---- data --------------------------------------------------------------------------------------------
class ClauseTensors(DocTensors):
    """Stage-1 tensors: documents shuffled without length bucketing, and the last incomplete batch of a
    shuffled (training) pass dropped, as in the reference."""

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0, bucket: bool = False) -> Iterator[DocBatch]:
        for b in super().batches(batch_size, shuffle=shuffle, seed=seed, bucket=bucket):
            if shuffle and b.batch_size < batch_size:
                continue
            yield b


def candidate_pairs(emotions: Sequence[int], causes: Sequence[int]) -> list[tuple[int, int]]:
    """Stage-2 candidates of one document: every (predicted emotion, predicted cause), i = j included."""
    return [(e, c) for e in sorted(emotions) for c in sorted(causes)]


@dataclass
class PairBatch:
    """K candidate pairs over U distinct clauses."""

    words: torch.Tensor        # [U, L] word ids of the clauses the pairs use
    clause_lens: torch.Tensor  # [U]
    emotion: torch.Tensor      # [K] row of each pair's emotion clause in ``words``
    cause: torch.Tensor        # [K] row of each pair's cause clause
    offset: torch.Tensor       # [K] cause index - emotion index
    label: torch.Tensor        # [K] 1 iff the pair is gold
    index: list[int]           # positions of the pairs in their CandidateTensors

    def to(self, device: torch.device | str) -> "PairBatch":
        return batch_to(self, device)


def _pair_batch(words: torch.Tensor, clause_lens: torch.Tensor, emo_rows: torch.Tensor, cau_rows: torch.Tensor,
                offset: torch.Tensor, label: torch.Tensor, index: list[int]) -> PairBatch:
    """Gather the distinct clauses of some pairs (rows of ``words``) into a PairBatch."""
    rows, inverse = torch.unique(torch.cat([emo_rows, cau_rows]), return_inverse=True)
    lens = clause_lens[rows]
    L = max(1, int(lens.max()) if len(rows) else 1)
    K = len(emo_rows)
    return PairBatch(words[rows, :L], lens, inverse[:K], inverse[K:], offset, label, index)


class CandidateTensors:
    """Stage-2 data: the candidate pairs built from stage-1 predictions on the documents of ``clauses``.

    Args:
        clauses: the documents' stage-1 tensors (their word matrix is reused).
        predictions: stage-1 predictions, one per document (only ``emotions`` and ``causes`` are read).
    """

    def __init__(self, clauses: DocTensors, predictions: Sequence[Prediction]):
        if len(clauses) != len(predictions):
            raise ValueError(f"{len(clauses)} documents but {len(predictions)} predictions")
        self.clauses, self.docs, self.stage1 = clauses, clauses.docs, list(predictions)
        rows = [(i, e, c, int((e, c) in d.pairs))
                for i, (d, p) in enumerate(zip(self.docs, self.stage1)) for e, c in candidate_pairs(p.emotions, p.causes)]
        table = torch.tensor(rows, dtype=torch.long).view(-1, 4)
        self.doc, self.emotion, self.cause, self.label = table.unbind(1)  # [K] each
        start = clauses.starts[self.doc]
        self.emotion_row, self.cause_row = start + self.emotion, start + self.cause

    def __len__(self) -> int:
        return len(self.doc)

    def batch(self, index: Sequence[int]) -> PairBatch:
        idx = torch.tensor(list(index), dtype=torch.long)
        return _pair_batch(self.clauses.words, self.clauses.clause_lens, self.emotion_row[idx], self.cause_row[idx],
                           self.cause[idx] - self.emotion[idx], self.label[idx], list(index))

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[PairBatch]:
        """Batches of candidates; a shuffled (training) pass drops its last incomplete batch, as the reference."""
        order = list(range(len(self)))
        if shuffle:
            random.Random(seed).shuffle(order)
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            if shuffle and len(chunk) < batch_size:
                break
            yield self.batch(chunk)


# ---- stage 1 -------------------------------------------------------------------------------------------
class _Embedded(nn.Module):
    """A stage that reads word vectors from an embedding table it either owns or shares (a frozen table
    is shared by both stages and stored once, by the enclosing model)."""

    def _attach(self, embed: nn.Embedding, own: bool) -> None:
        if own:
            self.embed = embed
        else:
            self._shared_embed = [embed]  # a list: not registered as a sub-module

    def embedding(self, words: torch.Tensor) -> torch.Tensor:
        table = self.embed if "embed" in self._modules else self._shared_embed[0]
        return table(words)

    def embed_clauses(self, words: torch.Tensor, lengths: torch.Tensor) -> PackedClauses:
        """Dropped-out word vectors of the real words of [N, L] clauses, packed."""
        return pack_clauses(words, lengths).map(lambda ids: self.dropout(self.embedding(ids)))

    def softmax_layers(self) -> list[nn.Module]:
        raise NotImplementedError

    def param_groups(self, l2: float) -> list[dict]:
        """L2 (lambda * 1/2 ||theta||^2, i.e. weight decay lambda) on the softmax layers only."""
        out = [p for m in self.softmax_layers() for p in m.parameters() if p.requires_grad]
        ids = {id(p) for p in out}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": out, "weight_decay": l2}, {"params": rest, "weight_decay": 0.0}]


class Tower(nn.Module):
    """One stage-1 tower: word BiLSTM + attention -> clause BiLSTM -> 2-way softmax (§3.1).

    Args:
        embed_dim: word vector size.
        hidden: LSTM units per direction.
        extra: size of an auxiliary input appended to each clause vector (2 for the other tower's
            probabilities in Inter-CE / Inter-EC, else 0).
    """

    def __init__(self, embed_dim: int, hidden: int, extra: int = 0, tf_init: bool = True):
        super().__init__()
        self.words = AttentionClauseEncoder(embed_dim, hidden, tf_init)
        self.clauses = BiLSTM(self.words.out_dim + extra, hidden, tf_init)
        self.out = uniform_init_(nn.Linear(self.clauses.out_dim, 2))

    def forward(self, x: PackedClauses, batch: DocBatch, aux: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            x: the embedded words of the batch's N clauses.
            aux: optional [B, D, extra] input appended to the clause vectors.
        Returns:
            [B, D, 2] log-probabilities.
        """
        s = self.words(x)                                                           # [N, 2h]
        B, D = batch.batch_size, batch.max_doc_len
        grid = s.new_zeros(B * D, s.shape[1]).index_copy(0, batch.clause_pos, s).view(B, D, -1)  # [B, D, 2h]
        if aux is not None:
            grid = torch.cat([grid, aux], dim=-1)                                    # [B, D, 2h + extra]
        r = self.clauses(grid, batch.doc_lens)                                       # [B, D, 2h]
        return F.log_softmax(self.out(r).float(), dim=-1)  # float32 under autocast too (see e2eecpe.model.head)


class ClauseExtractor(_Embedded):
    """Stage 1: emotion and cause clause extraction with two towers.

    Args:
        embed: word embedding table; ``own`` says whether this module owns (and stores) it.
        interaction: ``None`` (Indep), ``"ce"`` (cause -> emotion) or ``"ec"`` (emotion -> cause).
    """

    def __init__(self, embed: nn.Embedding, own: bool, hidden: int, dropout: float, interaction: str | None,
                 tf_init: bool = True):
        super().__init__()
        if interaction not in (None, "ce", "ec"):
            raise ValueError(f"interaction must be None, 'ce' or 'ec', got {interaction!r}")
        self._attach(embed, own)
        self.interaction = interaction
        self.dropout = nn.Dropout(dropout)
        dim = embed.embedding_dim
        self.emotion_tower = Tower(dim, hidden, 2 if interaction == "ce" else 0, tf_init)
        self.cause_tower = Tower(dim, hidden, 2 if interaction == "ec" else 0, tf_init)

    def softmax_layers(self) -> list[nn.Module]:
        return [self.emotion_tower.out, self.cause_tower.out]

    def forward(self, batch: DocBatch) -> dict[str, torch.Tensor]:
        """Returns ``emotion`` and ``cause`` [B, D, 2] log-probabilities."""
        x = self.embed_clauses(batch.words, batch.clause_lens)  # one dropout mask, read by both towers
        if self.interaction == "ce":
            cause = self.cause_tower(x, batch)
            emotion = self.emotion_tower(x, batch, aux=cause.exp())  # p^C, not detached
        elif self.interaction == "ec":
            emotion = self.emotion_tower(x, batch)
            cause = self.cause_tower(x, batch, aux=emotion.exp())    # p^E, not detached
        else:
            emotion, cause = self.emotion_tower(x, batch), self.cause_tower(x, batch)
        return {"emotion": emotion, "cause": cause}

    def loss(self, scores: dict[str, torch.Tensor], batch: DocBatch) -> torch.Tensor:
        """Mean cross-entropy per real clause, emotion + cause (weights 1); L2 is in ``param_groups``."""
        m = batch.mask
        return F.nll_loss(scores["emotion"][m], batch.emotion[m]) + F.nll_loss(scores["cause"][m], batch.cause[m])

    @torch.no_grad()
    def decode(self, scores: dict[str, torch.Tensor], batch: DocBatch, threshold: float | None = None) -> Decoded:
        """Emotion and cause clauses (argmax); no pairs."""
        B, D = batch.batch_size, batch.max_doc_len
        device = batch.mask.device
        return _clause_decoded(scores, batch, torch.zeros(0, 3, dtype=torch.long, device=device),
                               torch.zeros(0, device=device), torch.zeros(B, D, D, device=device))


def _clause_decoded(scores: dict[str, torch.Tensor], batch: DocBatch, pairs: torch.Tensor, pair_scores: torch.Tensor,
                    pair_prob: torch.Tensor) -> Decoded:
    """Stage-1 emotions and causes (argmax of the 2-way softmax on real clauses) with the given pairs."""
    emo, cau = scores["emotion"][..., 1].exp(), scores["cause"][..., 1].exp()  # [B, D]
    return Decoded(batch.doc_lens, pairs, pair_scores, _predicted(scores["emotion"], batch.mask),
                   _predicted(scores["cause"], batch.mask), emo, cau, pair_prob)


def _predicted(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, D] True where the argmax of the 2-way softmax is 1, on real clauses."""
    return (log_probs[..., 1] > log_probs[..., 0]) & mask


# ---- stage 2 -------------------------------------------------------------------------------------------
class PairFilter(_Embedded):
    """Stage 2: a logistic classifier on [s_e; s_c; v_{c-e}] (§4.2).

    Args:
        embed: word embedding table; ``own`` says whether this module owns (and stores) it.
        hidden: LSTM units per direction of the filter's own word encoder.
        pos_dim: relative-position embedding size; the table (frozen, random N(0, 0.1^2), row 0 = 0)
            covers offsets -max_offset..max_offset, larger offsets are clamped.
    """

    def __init__(self, embed: nn.Embedding, own: bool, hidden: int, pos_dim: int, dropout: float,
                 max_offset: int = 100, tf_init: bool = True):
        super().__init__()
        self._attach(embed, own)
        self.max_offset = max_offset
        self.dropout = nn.Dropout(dropout)
        self.words = AttentionClauseEncoder(embed.embedding_dim, hidden, tf_init)
        table = torch.randn(2 * max_offset + 1, pos_dim) * 0.1
        table[0] = 0.0
        self.register_buffer("position", table)                       # frozen
        self.out = uniform_init_(nn.Linear(2 * self.words.out_dim + pos_dim, 2))

    def softmax_layers(self) -> list[nn.Module]:
        return [self.out]

    def forward(self, batch: PairBatch) -> torch.Tensor:
        """Returns [K, 2] log-probabilities (index 1: the pair is kept)."""
        s = self.words(self.embed_clauses(batch.words, batch.clause_lens))              # [U, 2h]
        v = self.position[(batch.offset + self.max_offset).clamp(0, 2 * self.max_offset)]  # [K, pos_dim]
        x = torch.cat([s[batch.emotion], s[batch.cause], v], dim=-1)                  # [K, 4h + pos_dim]
        return F.log_softmax(self.out(x).float(), dim=-1)  # float32 under autocast too

    def loss(self, scores: torch.Tensor, batch: PairBatch) -> torch.Tensor:
        """-mean over the K x 2 entries of y * log y-hat, i.e. half the mean cross-entropy (the reference's)."""
        if len(batch.label) == 0:
            return scores.sum()
        return 0.5 * F.nll_loss(scores, batch.label)


@torch.inference_mode()
def evaluate_filter(pair_filter: PairFilter, candidates: CandidateTensors, threshold: float = 0.5,
                    batch_size: int = 512) -> dict[str, dict[str, float]]:
    """Pair / emotion / cause P/R/F1 of the kept candidates (emotions and causes from stage 1).

    Gold pairs count in every document, with or without candidates (as the reference).
    """
    pair_filter.eval()
    device = model_device(pair_filter)
    probs = torch.cat([pair_filter(b.to(device))[:, 1].exp().cpu() for b in candidates.batches(batch_size)]) \
        if len(candidates) else torch.zeros(0)
    preds = [Prediction([], p.emotions, p.causes, p.emotion_prob, p.cause_prob) for p in candidates.stage1]
    for k in (probs > threshold).nonzero().flatten().tolist():
        preds[int(candidates.doc[k])].pairs.append((int(candidates.emotion[k]), int(candidates.cause[k]), float(probs[k])))
    return score(candidates.docs, preds)


# ---- the model -----------------------------------------------------------------------------------------
def mean_clause_f1(metrics: dict) -> float:
    """Stage-1 selection key: (F1_emotion + F1_cause) / 2."""
    return (metrics["emotion"]["f1"] + metrics["cause"]["f1"]) / 2


mean_clause_f1.label = "mean emotion/cause F1"  # type: ignore[attr-defined]


class TwoStageECPE(ECPEModel):
    """Both stages of one two-stage configuration; the subclasses fix the stage-1 interaction.

    Args:
        vocab: word vocabulary (index 0 = padding).
        config: hyper-parameters (reference values by default).
        embeddings: optional [len(vocab), embed_dim] initial word vectors.
    """

    name = "two-stage"
    config_class = TwoStageConfig
    schedule = "two-stage"  # ecpe.training.train_two_stage: stage 1, candidate pairs, stage 2
    interaction: str | None = None

    def __init__(self, vocab: Vocab, config: TwoStageConfig | None = None, embeddings: np.ndarray | None = None):
        super().__init__(vocab, config)
        c = self.config

        def table() -> nn.Embedding:
            e = nn.Embedding(len(vocab), c.embed_dim, padding_idx=0)
            if embeddings is not None:
                e.weight.data.copy_(torch.as_tensor(embeddings))
            e.weight.requires_grad_(c.tune_embeddings)
            return e

        own = c.tune_embeddings  # tuned: each stage tunes its own copy; frozen: one shared table
        if not own:
            self.embed = table()
        self.stage1 = ClauseExtractor(table() if own else self.embed, own, c.hidden, c.stage1_dropout,
                                      self.interaction, c.tf_init)
        self.stage2 = PairFilter(table() if own else self.embed, own, c.hidden, c.pos_dim, c.stage2_dropout,
                                 c.max_offset, c.tf_init) if c.filter else None

    @property
    def filters(self) -> bool:
        """Whether stage 2 filters the candidates; setting ``config.filter = False`` on a trained model
        decodes it "w/o filter" (same stage 1, every candidate kept)."""
        return self.config.filter and self.stage2 is not None

    # ---- data ------------------------------------------------------------------------------------
    def tensorize(self, docs: Sequence[Document]) -> ClauseTensors:
        """Tensors of a split, built once (clauses truncated to ``max_clause_len`` words)."""
        return ClauseTensors(docs, self.vocab, self.config.max_clause_len, 1)

    # ---- the model -------------------------------------------------------------------------------
    def forward(self, batch: DocBatch) -> dict[str, torch.Tensor]:
        """Both stages on a batch of documents.

        Returns:
            ``emotion`` / ``cause`` [B, D, 2] stage-1 log-probabilities;
            ``candidates`` [K, 3] (document in batch, emotion clause, cause clause) of every candidate pair;
            ``keep`` [K] the filter's probability of keeping each candidate (1 without the filter).
        """
        scores = self.stage1(batch)
        emo, cau = _predicted(scores["emotion"], batch.mask), _predicted(scores["cause"], batch.mask)
        cand = (emo[:, :, None] & cau[:, None, :]).nonzero()                      # [K, 3] (b, i, j)
        scores["candidates"] = cand
        if not self.filters or len(cand) == 0:
            scores["keep"] = torch.ones(len(cand), device=cand.device)
            return scores
        D = batch.max_doc_len
        row_of = torch.full((batch.batch_size * D,), -1, dtype=torch.long, device=cand.device)
        row_of[batch.clause_pos] = torch.arange(len(batch.clause_pos), device=cand.device)  # grid cell -> clause row
        b, i, j = cand.unbind(1)
        pairs = _pair_batch(batch.words, batch.clause_lens, row_of[b * D + i], row_of[b * D + j], j - i,
                            torch.zeros_like(b), list(range(len(cand))))
        scores["keep"] = self.stage2(pairs)[:, 1].exp()
        return scores

    def loss(self, scores: dict[str, torch.Tensor], batch: DocBatch) -> torch.Tensor:
        """The stage-1 loss (stage 2 trains on candidate pairs: :func:`ecpe.training.train_two_stage`)."""
        return self.stage1.loss(scores, batch)

    @torch.no_grad()
    def decode(self, scores: dict[str, torch.Tensor], batch: DocBatch, threshold: float | None = None) -> Decoded:
        """Kept candidates as pairs (score = filter probability, 1.0 without the filter); emotions, causes and
        their probabilities from stage 1. ``threshold`` overrides the filter's keep threshold."""
        eta = self.config.threshold if threshold is None else threshold
        cand, keep = scores["candidates"], scores["keep"]
        kept = (keep > eta) if self.filters else torch.ones_like(keep, dtype=torch.bool)
        B, D = batch.batch_size, batch.max_doc_len
        pair_prob = keep.new_zeros(B, D, D)
        pair_prob[cand[:, 0], cand[:, 1], cand[:, 2]] = keep
        return _clause_decoded(scores, batch, cand[kept], keep[kept], pair_prob)

    def param_groups(self, l2: float) -> list[dict]:
        return [g for s in (self.stage1, self.stage2) if s is not None for g in s.param_groups(l2)]


class Indep(TwoStageECPE):
    """Indep: emotion and cause towers trained jointly but independent."""

    name = "indep"
    interaction = None


class InterCE(TwoStageECPE):
    """Inter-CE: cause predictions feed emotion extraction."""

    name = "inter-ce"
    interaction = "ce"


class InterEC(TwoStageECPE):
    """Inter-EC: emotion predictions feed cause extraction."""

    name = "inter-ec"
    interaction = "ec"
