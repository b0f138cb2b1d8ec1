"""Multi-kernel CNN clause encoder (Kim, 2014), eqs. 1-3 of Song et al. (2020)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

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


class _TapProducts(torch.autograd.Function):
    """``y = sum_j x[j : j + R] @ w_j.t()`` for taps ``j = 0 .. len(ws) - 1``, tap ``j``'s product added into the
    last ``len(w_j)`` columns of ``y`` [R, len(w_0)]: the window products of every width at once, each tap a
    product of shifted rows of ``x`` (views, nothing gathered). ``x`` [R + len(ws) - 1, D] and the ``w_j``
    [C_j, D] share one dtype; the backward is products too: ``dx[j : j + R] += dy_j @ w_j`` and ``dw_j = dy_j.t()
    @ x[j : j + R]``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[0] - len(ws) + 1, ws[0].shape[0]
        y = torch.mm(x[:rows], ws[0].t())
        for j in range(1, len(ws)):
            y[:, cols - ws[j].shape[0]:].addmm_(x[j:j + rows], ws[j].t())
        ctx.save_for_backward(x, *ws)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, *ws = ctx.saved_tensors
        rows, cols = dy.shape
        dx = None
        if ctx.needs_input_grad[0]:  # tap 0 (every column) writes the first rows, the others add theirs
            dx = torch.empty_like(x)
            torch.mm(dy, ws[0], out=dx[:rows])
            dx[rows:].zero_()
        dws = []
        for j, w in enumerate(ws):
            d = dy[:, cols - w.shape[0]:]
            if dx is not None and j:
                dx[j:j + rows].addmm_(d, w)
            dws.append(torch.mm(d.t(), x[j:j + rows]) if ctx.needs_input_grad[1 + j] else None)
        return (dx, *dws)


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
        if torch.is_autocast_enabled(x.device.type):
            return self._forward_taps(x, starts, lengths)
        outs = []
        for k, conv in zip(self.kernel_sizes, self.convs):
            valid, window_start = pooled_windows(k, starts, lengths)
            rows = x.index_select(0, (window_start[:, None] + torch.arange(k, device=starts.device)).reshape(-1))
            rows = rows.view(-1, k * x.shape[1])  # a window's k word vectors, in one row
            # conv weight [filters, in_dim, k] -> [filters, k * in_dim], matching the rows' word-major order
            weight = conv.weight.permute(0, 2, 1).reshape(conv.weight.shape[0], -1)
            c = torch.addmm(conv.bias, rows, weight.t())              # eq. 1 (before the ReLU): [windows, filters]
            pooled = segment_max(c, valid)  # eq. 2: [N, filters]
            outs.append(torch.relu(pooled))                           # relu(max) == max(relu)
        return torch.cat(outs, dim=1)                                 # eq. 3

    def _forward_taps(self, x: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_flat` under autocast (bf16 training): the windows' products as one product per tap.

        Tap ``j`` of every width at least ``j + 1`` multiplies the words shifted by ``j`` (:class:`_TapProducts`),
        so position ``s`` of width ``k``'s columns sums its window's ``k`` taps: every window of every position
        is computed, in five products of the whole sequence, with no window rows gathered (the gathered rows of
        the float32 path are 14 word vectors per position, and their gradient a scatter-add of as many). Pooling
        then gathers the pooled windows' outputs (``filters`` values each). The row count is padded to a
        multiple of ``ROW_BLOCK``: oneDNN builds a low-precision kernel for every new product shape, and the
        number of words changes with every batch. The same function as the float32 path; the rounding differs
        (each tap's product is added to the sum in the low precision).
        """
        dtype = torch.get_autocast_dtype(x.device.type)
        widths = sorted(range(len(self.kernel_sizes)), key=lambda i: self.kernel_sizes[i])  # narrowest first
        ks = [self.kernel_sizes[i] for i in widths]
        convs = [self.convs[i] for i in widths]
        filters = convs[0].weight.shape[0]
        # tap j: the filters of the widths wider than j, which are the last columns when the narrowest come first
        taps = [torch.cat([c.weight[:, :, j] for k, c in zip(ks, convs) if k > j]).to(dtype) for j in range(ks[-1])]
        total = x.shape[0]
        rows = -(-total // ROW_BLOCK) * ROW_BLOCK
        with torch.autocast(x.device.type, enabled=False):
            padded = F.pad(x.to(dtype), (0, 0, 0, rows + ks[-1] - 1 - total))
            y = _TapProducts.apply(padded, *taps)                      # eq. 1 before the bias: [rows, widths * filters]
            windows, valid = [], []
            for b, k in enumerate(ks):
                n, window_start = pooled_windows(k, starts, lengths)
                windows.append(window_start * len(ks) + b)             # row of (window, width) in y.view(-1, filters)
                valid.append(n)
            pooled = segment_max(y.view(-1, filters).index_select(0, torch.cat(windows)), torch.cat(valid))  # eq. 2
            pooled = pooled.view(len(ks), len(lengths), filters)
            if widths != sorted(widths):  # back to kernel_sizes' order
                pooled = pooled[torch.tensor(widths, device=pooled.device).argsort()]
            bias = torch.cat([conv.bias for conv in self.convs]).to(dtype)
            return torch.relu(pooled.permute(1, 0, 2).reshape(len(lengths), -1) + bias)  # max(c) + b == max(c + b)

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
