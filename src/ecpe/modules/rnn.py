"""Recurrent layers of the two-stage baselines (Xia & Ding, 2019): a masked BiLSTM and the word-level
BiLSTM + attention clause encoder, with TensorFlow-style initialisation."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .compat import lstm_direction

__all__ = ["BiLSTM", "bilstm_padded", "PackedClauses", "pack_clauses", "AttentionPool", "AttentionClauseEncoder", "tf_lstm_init_",
           "uniform_init_"]


def tf_lstm_init_(lstm: nn.LSTM) -> nn.LSTM:
    """Initialise like TensorFlow's ``LSTMCell``: Glorot-uniform over the concatenated [input; hidden]
    kernel of each direction, zero biases and +1 on the forget gate (PyTorch gate order i, f, g, o)."""
    h = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("weight_"):
            # TF kernel: [in + h, 4h], so fan_in + fan_out = in + h + 4h for both W_ih and W_hh
            in_dim = lstm.input_size if "_l0" in name else (2 if lstm.bidirectional else 1) * h
            bound = math.sqrt(6.0 / (in_dim + h + 4 * h))
            nn.init.uniform_(p, -bound, bound)
        elif name.startswith("bias_"):
            nn.init.zeros_(p)
            if name.startswith("bias_ih"):
                p.data[h:2 * h] = 1.0
    return lstm


def uniform_init_(module: nn.Module, bound: float = 0.01) -> nn.Module:
    """Every parameter of ``module`` from U(-bound, bound) (the reference's ``get_weight_varible``)."""
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)
    return module


class _SwapRows(torch.autograd.Function):
    """Rows of ``x`` [R, F] taken in the order of ``perm`` [R], a permutation that is its own inverse.

    The gradient is the same gather of the incoming gradient's rows, where ``gather``'s backward would
    zero a tensor and scatter-add into it (each row receiving one value: the same numbers, at the cost of a
    fill and a scatter)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(perm)
        return x.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (perm,) = ctx.saved_tensors
        return grad.index_select(0, perm), None


def swap_steps(x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
    """``x.gather(1, rev[:, :, None].expand_as(x))`` for [B, T, F] ``x`` and an involution ``rev`` [B, T] of
    each row's steps, with an equally cheap backward (:class:`_SwapRows`)."""
    B, T = rev.shape
    flat = (rev + torch.arange(B, device=rev.device)[:, None] * T).reshape(-1)
    return _SwapRows.apply(x.reshape(B * T, -1), flat).view(x.shape)


def bilstm_padded(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a one-layer bidirectional ``batch_first`` LSTM over padded sequences as if they were packed.

    The forward direction reads the padded batch as it is (steps past a sequence's end come after its
    real ones, so they change nothing before it); the backward direction reads each sequence reversed
    within its own length, so that it too starts on a real step. Outputs past a sequence's length are 0,
    as ``pad_packed_sequence`` gives. Same result as packing, to float rounding, but each direction is
    one fused LSTM call over [B, T] (PyTorch's packed CPU path runs step by step, and the backward pass
    of its per-step slices fills a [steps, 4h] gradient for every step). On a GPU, where cuDNN handles
    packed sequences well, the sequences are packed.

    Args:
        lstm: ``nn.LSTM(..., batch_first=True, bidirectional=True)`` with one layer.
        x: [B, T, in_dim] padded sequences.
        lengths: [B] real lengths (0 allowed).
    Returns:
        [B, T, 2 * hidden]
    """
    if lstm.num_layers != 1 or not lstm.bidirectional or not lstm.batch_first:
        raise ValueError("bilstm_padded needs a one-layer, bidirectional, batch_first nn.LSTM")
    B, T = x.shape[:2]
    t = torch.arange(T, device=lengths.device)
    real = t[None, :] < lengths[:, None]                                             # [B, T]
    if x.device.type == "cuda":
        # cuDNN runs packed sequences in one fused call (and wants its weights in one chunk, as nn.LSTM keeps them)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=T)
        return h * real[:, :, None].to(x.dtype)
    rev = torch.where(real, lengths[:, None] - 1 - t[None, :], t[None, :])          # an involution per row
    h0 = x.new_zeros(1, B, lstm.hidden_size)
    fw = lstm_direction(lstm, x, h0)
    x_rev = swap_steps(x, rev)
    bw = swap_steps(lstm_direction(lstm, x_rev, h0, reverse=True), rev)
    return torch.cat([fw, bw], dim=-1) * real[:, :, None].to(x.dtype)


class BiLSTM(nn.Module):
    """A bidirectional LSTM over padded sequences that reads only each sequence's real steps.

    The backward direction starts at the last real step; outputs past a sequence's length, and every
    output of a zero-length sequence, are 0 (as TensorFlow's ``bidirectional_dynamic_rnn``).

    Args:
        in_dim: input size.
        hidden: units per direction (the output has ``2 * hidden``).
        tf_init: initialise as TensorFlow's ``LSTMCell`` instead of PyTorch's default.
    """

    def __init__(self, in_dim: int, hidden: int, tf_init: bool = True):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)
        if tf_init:
            tf_lstm_init_(self.lstm)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: [N, T, in_dim] padded sequences.
            lengths: [N] real lengths (0 allowed).
        Returns:
            [N, T, 2 * hidden]
        """
        N, T = x.shape[:2]
        if N == 0:
            return x.new_zeros(0, T, self.out_dim)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=T)  # [N, T, 2h], 0 past the length
        if bool((lengths == 0).any()):
            h = h * (lengths > 0).to(h.dtype)[:, None, None]
        return h


@dataclass
class PackedClauses:
    """The non-empty clauses of a batch packed for an LSTM (real words only, no padding positions).

    ``packed.data`` holds word ids from :func:`pack_clauses`; :meth:`map` turns them into vectors.
    """

    packed: PackedSequence | None  # M non-empty clauses (None if M = 0)
    rows: torch.Tensor      # [M] row of each packed clause among the N clauses
    segment: torch.Tensor   # [T] which packed clause (0..M-1, unsorted) each element of packed.data belongs to
    n: int                  # N, all clauses (empty ones included)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "PackedClauses":
        """Apply ``fn`` to the packed elements (e.g. embedding lookup, then dropout)."""
        if self.packed is None:
            return self
        return dataclasses.replace(self, packed=self.packed._replace(data=fn(self.packed.data)))


def pack_clauses(words: torch.Tensor, lengths: torch.Tensor) -> PackedClauses:
    """Pack the real words of clauses.

    Args:
        words: [N, L] word ids (padding past each clause's length).
        lengths: [N] words per clause (0 allowed: such clauses are left out and encode to 0).
    """
    rows = (lengths > 0).nonzero().flatten()
    if len(rows) == 0:
        return PackedClauses(None, rows, rows, len(lengths))
    packed = pack_padded_sequence(words[rows], lengths[rows].cpu(), batch_first=True, enforce_sorted=False)
    bs = packed.batch_sizes
    # packed.data is time-major: at step t, sorted clauses 0..bs[t]-1
    within = torch.arange(int(bs.sum())) - torch.repeat_interleave(torch.cumsum(bs, 0) - bs, bs)  # on the CPU, as bs
    return PackedClauses(packed, rows, packed.sorted_indices[within.to(words.device)], len(lengths))


class AttentionPool(nn.Module):
    """Additive attention over the real positions of each sequence:
    u_t = tanh(W1 h_t + b1), a_t = w2^T u_t, alpha = masked softmax (sum + 1e-9), s = sum_t alpha_t h_t.
    Works on packed elements: element k of ``h`` belongs to sequence ``segment[k]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)              # W1, b1
        self.score = nn.Linear(dim, 1, bias=False)   # w2
        uniform_init_(self)

    def forward(self, h: torch.Tensor, segment: torch.Tensor, n: int) -> torch.Tensor:
        """
        Args:
            h: [T, dim] states of all real positions.
            segment: [T] sequence of each position, in 0..n-1.
            n: number of sequences.
        Returns:
            [n, dim] (0 for a sequence without positions).
        """
        a = self.score(torch.tanh(self.proj(h))).squeeze(-1).float()  # [T]; float32 under autocast too
        # shifting by each sequence's largest score changes nothing but keeps exp() finite
        top = a.new_full((n,), float("-inf")).scatter_reduce(0, segment, a.detach(), "amax")   # [n]
        e = torch.exp(a - top[segment])
        total = e.new_zeros(n).index_add(0, segment, e) + 1e-9                                # [n]
        alpha = e / total[segment]                                                             # [T]
        return h.new_zeros(n, h.shape[1]).index_add(0, segment, alpha.to(h.dtype)[:, None] * h)


class AttentionClauseEncoder(nn.Module):
    """Word-level BiLSTM + attention: one vector per clause, all clauses of a batch in one packed pass.

    Args:
        in_dim: word vector size.
        hidden: LSTM units per direction; clause vectors have ``2 * hidden``.
        tf_init: TensorFlow-style LSTM initialisation.
    """

    def __init__(self, in_dim: int, hidden: int, tf_init: bool = True):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, bidirectional=True)
        if tf_init:
            tf_lstm_init_(self.lstm)
        self.attention = AttentionPool(2 * hidden)
        self.out_dim = 2 * hidden

    def forward(self, clauses: PackedClauses) -> torch.Tensor:
        """
        Args:
            clauses: packed word vectors (see :func:`pack_clauses` and :meth:`PackedClauses.map`).
        Returns:
            [N, 2 * hidden] clause vectors (0 for empty clauses).
        """
        if clauses.packed is None:
            return self.attention.proj.weight.new_zeros(clauses.n, self.out_dim)
        h, _ = self.lstm(clauses.packed)                                     # packed [T, 2h]
        s = self.attention(h.data, clauses.segment, len(clauses.rows))      # [M, 2h]
        return s.new_zeros(clauses.n, s.shape[1]).index_copy(0, clauses.rows, s)
