"""Clause-level attention over a document, on top of the BiLSTM states of eq. 4.

E2EECPE relates clauses only through its clause BiLSTM (eq. 4) and the pair matrix. Later ECPE models add a
layer in which every clause looks at the document's other clauses: RankCP (Wei et al., ACL 2020) a graph
attention network over clauses, Inter-EC (Xia & Ding, ACL 2019) the emotion predictions fed to the cause
extractor. :class:`ClauseAttention` is that layer; its output projection starts at zero, so an untrained
model's states are exactly the BiLSTM's.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ClauseAttention(nn.Module):
    """h_i + W_o sum_j a_ij W_v h_j with a_ij = softmax_j(q_i . k_j / sqrt(d) + prior_j) per head.

    ``prior`` (optional, [B, D]) is added to every query's scores for key j: the log of how much clause j
    should be looked at (``log P(emotion | j)`` makes each clause read the document's likely emotion clauses).
    Padding clauses are never attended to and stay zero.

    Args:
        dim: size of the clause states.
        attention_dim: total size of the queries, keys and values (split over ``heads``).
        heads: number of attention heads.
    """

    def __init__(self, dim: int, attention_dim: int, heads: int = 4):
        super().__init__()
        if attention_dim % heads:
            raise ValueError(f"attention_dim {attention_dim} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, attention_dim // heads
        self.qkv = nn.Linear(dim, 3 * attention_dim)
        self.out = nn.Linear(attention_dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """h: [B, D, dim]; mask: [B, D] bool, True on real clauses. Returns [B, D, dim]."""
        B, D, _ = h.shape
        q, k, v = self.qkv(h).view(B, D, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # each [B, H, D, d]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)                          # [B, H, D, D]
        if prior is not None:
            scores = scores + prior[:, None, None, :]
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        # a document's real clauses always include the query's own, so no row of a real clause is all -inf;
        # padding rows (all -inf when the document is empty of keys) are zeroed below
        attn = torch.softmax(scores.float(), -1).nan_to_num(0.0)  # float32 under autocast too
        context = (attn @ v).transpose(1, 2).reshape(B, D, -1)                                  # [B, D, H * d]
        return (h + self.out(context)) * mask[..., None].to(h.dtype)
