"""A pair-scorer term beside the biaffine of eq. 7: what the distance between two clauses adds.

ECPE-MLL (Ding et al. EMNLP 2020) predicts pairs inside a window around each clause; E2EECPE knows the distance
only as the fixed prior A of eq. 9. The term starts at zero, so an untrained model scores pairs exactly as
the paper's.
"""
from __future__ import annotations

import torch
from torch import nn


def clipped_offsets(size: int, max_distance: int, device=None) -> torch.Tensor:
    """[size, size] long: p - q clipped to [-max_distance, max_distance], shifted to 0 .. 2 * max_distance."""
    idx = torch.arange(size, device=device)
    return (idx[:, None] - idx[None, :]).clamp(-max_distance, max_distance) + max_distance


class WindowScorer(nn.Module):
    """s_pq = u_{p - q} . h^e_p + v_{p - q} . h^c_q + b_{p - q}: ECPE-MLL's window multi-label heads as a logit
    term. Each clause, as the emotion pivot p, has one linear classifier per offset of its window telling
    whether the clause at that offset is its cause; each clause, as the cause pivot q, has one per offset
    telling whether that clause is its emotion (ECPE-MLL's row and column predictions, there with their own
    losses, here summed into M and trained by eq. 15). Offsets beyond ``max_distance`` share the outermost
    classifiers (ECPE-MLL predicts no pair outside its window; the biaffine and A still score those).

    Starts at zero (weights and biases), so an untrained model scores pairs as the paper's.
    """

    def __init__(self, dim: int, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        n = 2 * max_distance + 1
        self.emotion = nn.Linear(dim, n)               # u_k, b_k: emotion pivot, one classifier per offset
        self.cause = nn.Linear(dim, n, bias=False)     # v_k: cause pivot
        for w in (self.emotion.weight, self.emotion.bias, self.cause.weight):
            nn.init.zeros_(w)

    def forward(self, h_e: torch.Tensor, h_c: torch.Tensor) -> torch.Tensor:
        """h_e, h_c: [B, D, dim] clause states of the emotion and the cause side. Returns [B, D, D] scores,
        row p = emotion clause, column q = cause clause."""
        B, D, _ = h_e.shape
        off = clipped_offsets(D, self.max_distance, h_e.device)                 # [D, D]: p - q, shifted
        row = self.emotion(h_e).gather(2, off.expand(B, D, D))                  # [b, p, q] = u_{p-q} . h_p + b
        col = self.cause(h_c).gather(2, off.t().expand(B, D, D)).transpose(1, 2)  # [b, p, q] = v_{p-q} . h_q
        return row + col
