"""Biaffine pair scorer, eq. 7 of Song et al. (2020): M_pq = (W_m z^e_p + b_m)^T z^c_q."""
from __future__ import annotations

import torch
from torch import nn


class Biaffine(nn.Module):
    """Directed pair scores between two sets of vertex representations.

    Rows are the first argument (emotion vertices p), columns the second (cause vertices q); since
    W_m is not symmetric, M is not symmetric.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.affine = nn.Linear(dim, dim)  # W_m, b_m

    def forward(self, z_e: torch.Tensor, z_c: torch.Tensor) -> torch.Tensor:
        """
        Args:
            z_e: [B, D, dim] emotion representations.
            z_c: [B, D, dim] cause representations.
        Returns:
            [B, D, D] scores, row p = emotion clause, column q = cause clause.
        """
        return torch.bmm(self.affine(z_e), z_c.transpose(1, 2))
