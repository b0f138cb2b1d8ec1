"""How the clauses of a batch are laid end to end for the clause encoder (shared by batching and the CNN)."""
from __future__ import annotations

import torch

__all__ = ["flat_layout"]


def flat_layout(lengths: torch.Tensor, width: int) -> tuple[torch.Tensor, int]:
    """Where each clause starts when clauses are laid end to end, each taking ``max(length, width)``
    positions (a clause shorter than ``width`` is followed by zeros up to ``width``).

    With ``width`` = the widest kernel, every window a clause pools over lies inside its own span.
    Returns (starts [N], total length T).
    """
    spans = lengths.clamp(min=width)
    starts = torch.cumsum(spans, 0) - spans
    return starts, int(spans.sum())
