"""Pair-scorer terms beside the biaffine of eq. 7: what the distance between two clauses adds.

Later ECPE models score a pair with its relative position (ECPE-2D, Ding et al. ACL 2020; RankCP, Wei et al.
ACL 2020) or inside a window around the emotion clause (ECPE-MLL, Ding et al. EMNLP 2020); E2EECPE has it
only as the fixed prior A of eq. 9. Both terms here start at zero, so an untrained model scores pairs exactly
as the paper's.
"""
from __future__ import annotations

import torch
from torch import nn


def clipped_offsets(size: int, max_distance: int, device=None) -> torch.Tensor:
    """[size, size] long: p - q clipped to [-max_distance, max_distance], shifted to 0 .. 2 * max_distance."""
    idx = torch.arange(size, device=device)
    return (idx[:, None] - idx[None, :]).clamp(-max_distance, max_distance) + max_distance


class DistanceBias(nn.Module):
    """A learned logit offset b_{p - q} for each clipped distance from emotion clause p to cause clause q."""

    def __init__(self, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Parameter(torch.zeros(2 * max_distance + 1))

    def forward(self, size: int) -> torch.Tensor:
        """[size, size] offsets, row p = emotion clause, column q = cause clause."""
        return self.bias[clipped_offsets(size, self.max_distance, self.bias.device)]


class PairMLP(nn.Module):
    """s_pq = w^T relu(U_e z^e_p + U_c z^c_q + r_{p - q}) + b_{p - q}: a one-hidden-layer scorer of each
    (emotion, cause) pair that sees both clauses and their clipped distance together, so that what makes a
    cause likely may depend on where it sits (the biaffine term cannot: it is blind to position).

    The output layer starts at zero (s = 0 until training moves it). Memory: a [B, D, D, hidden] activation.
    """

    def __init__(self, dim: int, hidden: int, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        self.emotion = nn.Linear(dim, hidden)
        self.cause = nn.Linear(dim, hidden, bias=False)
        self.distance = nn.Embedding(2 * max_distance + 1, hidden)
        nn.init.normal_(self.distance.weight, std=0.1)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.bias = DistanceBias(max_distance)

    def forward(self, z_e: torch.Tensor, z_c: torch.Tensor) -> torch.Tensor:
        """z_e, z_c: [B, D, dim]. Returns [B, D, D] scores, row p = emotion clause, column q = cause clause."""
        D = z_e.shape[1]
        r = self.distance(clipped_offsets(D, self.max_distance, z_e.device))             # [D, D, hidden]
        h = torch.relu(self.emotion(z_e)[:, :, None] + self.cause(z_c)[:, None] + r[None])  # [B, D, D, hidden]
        return self.out(h).squeeze(-1) + self.bias(D)
