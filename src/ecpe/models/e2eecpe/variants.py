"""E2EECPE's opt-in variants: for each step of §3 that an option changes, the paper's step and ours.

Three steps can change, each chosen by one config field; the first value is the paper's:

- ``clause_context`` (after eq. 4): what a clause reads of its document's other clauses beyond the clause
  BiLSTM. ``bilstm``: nothing more; ``bilstm+attention``: a clause self-attention layer read by both sides
  (as RankCP relates clauses); ``bilstm+emotion``: the cause side attends to the document's clauses
  weighted by the emotion head's probabilities (as Inter-EC feeds emotions to the cause extractor).
- ``pair_scorer`` (eq. 7): ``biaffine``: M as it is; ``biaffine+window``: plus ECPE-MLL's window heads.
- ``pair_loss`` (eq. 15): ``bce``: eq. 15; ``bce+rank``: plus a listwise term per document (as RankCP ranks
  a document's candidate pairs).

Every variant starts as the paper's model: its added layers' outputs are zero until training moves them.
The model calls the same methods whichever variant it holds, so adding one is a class here and a value in
:data:`ecpe.config.CLAUSE_CONTEXTS` / ``PAIR_SCORERS`` / ``PAIR_LOSSES``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import E2EConfig
from ...modules import ClauseAttention, WindowScorer

__all__ = ["pair_loss", "rank_loss", "clause_context", "pair_scorer", "pair_objective",
           "ClauseContext", "PairScorer", "PairLoss"]


# ---- clause context (after eq. 4) ------------------------------------------------------------------
class ClauseContext(nn.Module):
    """``bilstm``, the paper's: the clause BiLSTM's states h (eq. 4) are what both sides read."""

    def shared(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The states [B, D, dim] read by the emotion side (eq. 5, eqs. 11 and 13) and, unless :meth:`cause`
        changes them, by the cause side."""
        return h

    def cause(self, h: torch.Tensor, mask: torch.Tensor, emotion: torch.Tensor | None) -> torch.Tensor:
        """The states the cause side (eq. 6, eqs. 12 and 14) reads; ``emotion``: the emotion head's
        log-probabilities [B, D, 2] (None without the auxiliary heads)."""
        return h


class AttentionContext(ClauseAttention, ClauseContext):
    """``bilstm+attention``: every clause reads the document's clauses through a clause self-attention layer."""

    def shared(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self(h, mask)


class EmotionContext(ClauseAttention, ClauseContext):
    """``bilstm+emotion``: the cause side reads the document's clauses weighted towards its likely emotion
    clauses (the emotion head's log-probabilities, not differentiated: the emotion head learns from its own
    loss only)."""

    def cause(self, h: torch.Tensor, mask: torch.Tensor, emotion: torch.Tensor | None) -> torch.Tensor:
        return self(h, mask, prior=emotion[..., 1].detach())


def clause_context(c: E2EConfig) -> ClauseContext:
    """The clause context of ``c.clause_context`` (its layer sized by ``c.hidden``, ``c.vertex_dim`` and
    ``c.attention_heads``)."""
    if c.clause_context == "bilstm":
        return ClauseContext()
    cls = {"bilstm+attention": AttentionContext, "bilstm+emotion": EmotionContext}[c.clause_context]
    return cls(2 * c.hidden, c.vertex_dim, c.attention_heads)


# ---- pair scorer (eq. 7) ---------------------------------------------------------------------------
class PairScorer(nn.Module):
    """``biaffine``, the paper's: M is the biaffine's scores (eq. 7)."""

    def forward(self, m: torch.Tensor, h_e: torch.Tensor, h_c: torch.Tensor) -> torch.Tensor:
        """M [B, D, D] from the biaffine's scores ``m`` and the two sides' clause states [B, D, dim]."""
        return m


class WindowPairScorer(WindowScorer, PairScorer):
    """``biaffine+window``: M plus ECPE-MLL's window heads (:class:`ecpe.modules.WindowScorer`), offsets
    beyond ``max_distance`` sharing the outermost classifiers."""

    def forward(self, m: torch.Tensor, h_e: torch.Tensor, h_c: torch.Tensor) -> torch.Tensor:
        return m + WindowScorer.forward(self, h_e, h_c)


def pair_scorer(c: E2EConfig) -> PairScorer:
    """The pair scorer of ``c.pair_scorer``."""
    if c.pair_scorer == "biaffine":
        return PairScorer()
    return WindowPairScorer(2 * c.hidden, c.max_distance)


# ---- pair loss (eq. 15) ----------------------------------------------------------------------------
def pair_loss(logits: torch.Tensor, weights: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Summed binary cross-entropy of M-hat = sigmoid(M) * A against Y (eq. 15), computed in log space.

    log M-hat = logsigmoid(M) + log A;  log(1 - M-hat) = log(sigmoid(-M) + (1 - A) sigmoid(M)).
    A clamped ``binary_cross_entropy`` on M-hat kills the gradient of saturated entries.

    Args:
        logits, weights, gold: matching 1-d tensors of the real (p, q) entries.
    """
    ls_pos, ls_neg = F.logsigmoid(logits), F.logsigmoid(-logits)
    log_p = ls_pos + torch.log(weights)
    log_not_p = torch.logaddexp(ls_neg, torch.log1p(-weights) + ls_pos)
    return -(gold * log_p + (1 - gold) * log_not_p).sum()


def rank_loss(logits: torch.Tensor, weights: torch.Tensor, target: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Listwise loss of each document's pair probabilities: cross-entropy between the target pairs, as a
    distribution over the document's cells, and softmax(log M-hat) = M-hat / sum of the document's M-hat.

    Eq. 15 judges every cell alone; this term asks the gold pairs to outrank the other pairs of their
    document, as RankCP (Wei et al., ACL 2020) ranks a document's candidate pairs. Documents without a
    target pair add nothing. Summed over documents.

    Args:
        logits, weights, target: [B, D, D] M, A and the (0/1 or soft) pair targets.
        cells: [B, D, D] bool, the real (p, q) cells.
    """
    log_mhat = (F.logsigmoid(logits) + torch.log(weights)).masked_fill(~cells, float("-inf")).flatten(1)  # [B, D * D]
    t = (target * cells).flatten(1)
    mass = t.sum(1)
    has = mass > 0
    if not bool(has.any()):
        return logits.new_zeros(())
    log_p = log_mhat[has] - torch.logsumexp(log_mhat[has], 1, keepdim=True)
    t = t[has] / mass[has, None]
    return -(t * log_p.masked_fill(t == 0, 0.0)).sum()


class PairLoss(nn.Module):
    """``bce``, the paper's: eq. 15 over the real cells of the pair matrices."""

    def forward(self, logits: torch.Tensor, weights: torch.Tensor, target: torch.Tensor,
                cells: torch.Tensor) -> torch.Tensor:
        """The summed pair loss of a batch: ``logits`` M, ``weights`` A, ``target`` Y ([B, D, D]); ``cells``
        [B, D, D] bool, the real (p, q) cells."""
        return pair_loss(logits[cells], weights[cells], target[cells])


class RankedPairLoss(PairLoss):
    """``bce+rank``: eq. 15 plus ``weight`` times :func:`rank_loss`."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, logits: torch.Tensor, weights: torch.Tensor, target: torch.Tensor,
                cells: torch.Tensor) -> torch.Tensor:
        return super().forward(logits, weights, target, cells) + self.weight * rank_loss(logits, weights, target, cells)


def pair_objective(c: E2EConfig) -> PairLoss:
    """The pair loss of ``c.pair_loss`` (``c.rank_weight``: the listwise term's weight)."""
    return PairLoss() if c.pair_loss == "bce" else RankedPairLoss(c.rank_weight)
