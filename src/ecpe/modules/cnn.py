"""Multi-kernel CNN clause encoder (Kim, 2014), eqs. 1-3 of Song et al. (2020)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.layout import flat_layout
from .compat import segment_max

__all__ = ["ClauseCNN", "flat_layout", "pooled_windows", "ROW_BLOCK"]

#: Under autocast (bf16 training) the CNN's window products get a row count padded to a multiple of this.
ROW_BLOCK = 1024


def pooled_windows(k: int, starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The width-``k`` windows max-pooling can pick, for clauses laid out by :func:`flat_layout`: those that
    start on a clause's word and fit in it, or a shorter clause's first window.

    Returns (windows per clause [N], start position of every window [W], clause by clause).
    """
    valid = (lengths - k + 1).clamp(min=1)                    # windows per clause
    first = torch.cumsum(valid, 0) - valid                    # row of each clause's first window
    total = int(first[-1] + valid[-1]) if len(valid) else 0
    return valid, (torch.repeat_interleave(starts - first, valid, output_size=total)
                   + torch.arange(total, device=starts.device))


class _GatherRows(torch.autograd.Function):
    """``[x.index_select(0, idx) for idx in indices]`` whose backward adds every result's gradient into one
    buffer (one zero-fill, no sums of whole-``x`` gradients): for the CNN's window rows of every width."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *indices: torch.Tensor):
        ctx.save_for_backward(*indices)
        ctx.rows = len(x)
        return tuple(x.index_select(0, idx) for idx in indices)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        indices = ctx.saved_tensors
        first = next(g for g in grads if g is not None)
        out = first.new_zeros(ctx.rows, first.shape[1])
        for idx, g in zip(indices, grads):
            if g is not None:
                out.index_add_(0, idx, g)
        return (out, *(None for _ in indices))


class ClauseCNN(nn.Module):
    """Convolutions of several widths + ReLU + max-pool over each clause, concatenated.

    The clauses of a batch are laid end to end in one sequence (a clause shorter than the widest kernel is
    followed by zeros up to that width) and every convolution runs once over that sequence: no position is
    spent on the padding of a rectangular [clauses, longest clause] matrix (the mean NEWS clause has 6
    words, the longest 43). Pooling then takes, per clause, the windows that start on one of its words and
    fit in it (a segment max); a clause shorter than a kernel keeps its first window, which covers the zeros
    after it, exactly as a zero-padded clause would. A clause's vector does not depend on the other clauses.

    Args:
        in_dim: word vector size.
        kernel_sizes: convolution widths ({2, 3, 4, 5} in the paper).
        filters: filters per width (50 in the paper).
    """

    def __init__(self, in_dim: int, kernel_sizes: Sequence[int] = (2, 3, 4, 5), filters: int = 50):
        super().__init__()
        self.kernel_sizes = tuple(kernel_sizes)
        self.width = max(self.kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, filters, k) for k in self.kernel_sizes)
        self.out_dim = filters * len(self.kernel_sizes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode padded clauses.

        Args:
            x: [N, L, in_dim] embedded clauses (positions past a clause's length are ignored).
            lengths: [N] number of real words per clause.
        Returns:
            [N, filters * len(kernel_sizes)]
        """
        starts, total = flat_layout(lengths, self.width)
        cols = torch.arange(x.shape[1], device=lengths.device)
        real = cols[None, :] < lengths[:, None]                                    # [N, L]
        pos = (starts[:, None] + cols[None, :])[real]                              # flat position of each word
        flat = x.new_zeros(total, x.shape[2]).index_copy(0, pos, x[real])
        return self.forward_flat(flat, starts, lengths)

    def forward_flat(self, x: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode clauses laid end to end (see :func:`flat_layout`).

        Only the windows that pooling can pick are computed: for each width k, the windows that start on
        a clause's word and fit in it (or, for a clause shorter than k, its first window). They are
        gathered as rows of k word vectors and multiplied by the filters in one matrix product per width,
        so no multiply-add is spent on windows that straddle two clauses or on a clause's zeros past its
        first window (with a 6-word mean clause, about half of what a convolution over the whole sequence
        computes). The result equals the convolution's to float rounding.

        Args:
            x: [T, in_dim] word vectors of all clauses laid out by ``flat_layout(lengths, max(kernel_sizes))``.
            starts: [N] position of each clause's first word in ``x``.
            lengths: [N] words per clause.
        Returns:
            [N, filters * len(kernel_sizes)]
        """
        lowp = torch.is_autocast_enabled(x.device.type)
        block = ROW_BLOCK if lowp else 1
        windows, rows_of = [], []
        for k in self.kernel_sizes:
            valid, window_start = pooled_windows(k, starts, lengths)
            total = len(window_start)
            if total % block:  # padding windows (starting on position 0) are dropped after the product
                window_start = torch.cat([window_start, window_start.new_zeros(block - total % block)])
            windows.append((valid, total))
            rows_of.append((window_start[:, None] + torch.arange(k, device=starts.device)).reshape(-1))
        if lowp:
            # low precision (bf16 training): the words are cast once and the window rows gathered already
            # cast, their number padded to a multiple of ROW_BLOCK (oneDNN builds a kernel for every new
            # shape of a low-precision product, and the number of windows changes with every batch)
            gathered = _GatherRows.apply(x.to(torch.get_autocast_dtype(x.device.type)), *rows_of)
        else:
            gathered = [x.index_select(0, idx) for idx in rows_of]
        outs = []
        for conv, (valid, total), rows in zip(self.convs, windows, gathered):
            rows = rows.view(-1, rows.shape[1] * conv.weight.shape[2])  # a window's k word vectors, in one row
            # conv weight [filters, in_dim, k] -> [filters, k * in_dim], matching the rows' word-major order
            weight = conv.weight.permute(0, 2, 1).reshape(conv.weight.shape[0], -1)
            c = torch.addmm(conv.bias, rows, weight.t())[:total]      # eq. 1 (before the ReLU): [windows, filters]
            pooled = segment_max(c, valid)  # eq. 2: [N, filters]
            outs.append(torch.relu(pooled))                           # relu(max) == max(relu)
        return torch.cat(outs, dim=1)                                 # eq. 3

    # ---- inference from projected words ------------------------------------------------------------
    def projection(self) -> torch.Tensor:
        """[sum(kernel_sizes) * filters, in_dim]: the filters of every width, tap by tap.

        A window's pre-activation is ``bias + sum_j W_kj x_(s+j)`` (eq. 1) with ``W_kj`` the [filters,
        in_dim] slice of tap ``j``; rows ``(offset(k) + j) * filters ...`` of this matrix hold ``W_kj``
        (offsets in the order of ``kernel_sizes``). Multiplying word vectors by its transpose once gives
        every tap's contribution of every word (see :meth:`forward_projected`).
        """
        return torch.cat([conv.weight.permute(2, 0, 1).reshape(-1, conv.weight.shape[1]) for conv in self.convs])

    def forward_projected(self, table: torch.Tensor, ids: torch.Tensor, starts: torch.Tensor,
                          lengths: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward_flat` from words already multiplied by :meth:`projection`.

        The convolution is linear in the word vectors, so a window's pre-activation is the sum of its
        words' tap contributions: ``k`` rows of ``filters`` values added instead of a ``k * in_dim`` by
        ``filters`` product. With a fixed vocabulary the products can be made once per word type (a
        table of ``len(vocab)`` rows, ``table = embeddings @ projection().t()``; :meth:`E2EECPE.encode`
        does so at inference), leaving the clause encoder a gather and a sum. Equal to
        :meth:`forward_flat` to float rounding.

        Args:
            table: [R, sum(kernel_sizes) * filters] projected word vectors.
            ids: [T] the row of ``table`` at each position of the layout of :func:`flat_layout`
                (word ids for a vocabulary table; ``arange(T)`` when ``table`` holds the positions' own rows).
            starts, lengths: as for :meth:`forward_flat`.
            extra: [E, same width] rows for ids ``len(table)`` to ``len(table) + E - 1`` (e.g. unknown
                words composed of their characters), kept apart so that the table is not copied.
        """
        n_taps = sum(self.kernel_sizes)
        filters = table.shape[1] // n_taps
        taps_flat = table.reshape(-1, filters)                        # row r * n_taps + tap
        outs, offset = [], 0
        for k, conv in zip(self.kernel_sizes, self.convs):
            valid, window_start = pooled_windows(k, starts, lengths)
            total = len(window_start)
            taps = torch.arange(k, device=starts.device)
            words = ids[window_start[:, None] + taps]                 # word s + j for tap j: [windows, k]
            if extra is None:
                c = taps_flat.index_select(0, (words * n_taps + offset + taps).reshape(-1))
            else:
                R = len(table)
                c = taps_flat.index_select(0, (words.clamp(max=R - 1) * n_taps + offset + taps).reshape(-1))
                beyond = (words >= R).reshape(-1).nonzero().squeeze(1)
                if len(beyond):
                    rows = (words - R).clamp(min=0) * n_taps + offset + taps
                    c[beyond] = extra.reshape(-1, filters)[rows.reshape(-1)[beyond]]
            c = c.view(total, k, filters).sum(1)
            pooled = segment_max(c, valid) + conv.bias  # max(c) + b == max(c + b)
            outs.append(torch.relu(pooled))
            offset += k
        return torch.cat(outs, dim=1)
