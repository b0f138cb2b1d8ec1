"""Multi-kernel CNN clause encoder (Kim, 2014), eqs. 1-3 of Song et al. (2020)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ClauseCNN(nn.Module):
    """Convolutions of several widths + ReLU + max-pool over each clause, concatenated.

    Windows that lie wholly past a clause's last word are masked before pooling, so a clause's vector does
    not depend on how much padding its batch carries. Clauses shorter than a kernel keep their first window
    (which covers the zero padding), as in the paper's code.

    Args:
        in_dim: word vector size.
        kernel_sizes: convolution widths ({2, 3, 4, 5} in the paper).
        filters: filters per width (50 in the paper).
    """

    def __init__(self, in_dim: int, kernel_sizes: Sequence[int] = (2, 3, 4, 5), filters: int = 50):
        super().__init__()
        self.kernel_sizes = tuple(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, filters, k) for k in self.kernel_sizes)
        self.out_dim = filters * len(self.kernel_sizes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: [N, L, in_dim] embedded clauses, L >= max(kernel_sizes).
            lengths: [N] number of real words per clause.
        Returns:
            [N, filters * len(kernel_sizes)]
        """
        x = x.transpose(1, 2)  # [N, in_dim, L]
        outs = []
        for k, conv in zip(self.kernel_sizes, self.convs):
            c = conv(x)  # [N, filters, L - k + 1]
            # window t is valid if it starts on a real word and fits (or is the first window)
            t = torch.arange(c.shape[2], device=c.device)
            valid = (t[None, :] <= (lengths[:, None] - k).clamp(min=0))  # [N, L - k + 1]
            c = c.masked_fill(~valid[:, None, :], float("-inf"))
            outs.append(torch.relu(c.amax(dim=2)))  # eq. 1-2: relu(max) == max(relu)
        return torch.cat(outs, dim=1)  # eq. 3
