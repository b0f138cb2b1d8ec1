"""The private PyTorch interfaces this package relies on, each behind one small function.

Each is used because the public alternative costs speed (measured on the CPU this project runs on), and
each has a test in ``tests/test_compat.py`` that compares it with a public-API reference, so a PyTorch
upgrade that changes one fails loudly there instead of making results silently wrong.

- :func:`lstm_direction`: one direction of a bidirectional ``nn.LSTM`` as one fused call (``torch.lstm``,
  an undocumented ATen op called positionally), so each direction of :func:`ecpe.modules.bilstm_padded`
  reads its own padded batch;
- :func:`segment_max`: ``torch.segment_reduce(..., unsafe=True)`` (beta API; ``unsafe`` skips the check
  that the lengths add up, which the callers guarantee by construction);
- :func:`tensor_version`: ``Tensor._version``, the in-place modification counter, as a cache key.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["lstm_direction", "segment_max", "tensor_version"]


def lstm_direction(lstm: nn.LSTM, x: torch.Tensor, h0: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Run one direction of a one-layer ``batch_first`` ``nn.LSTM`` over ``x`` [B, T, in] from state
    ``(h0, h0)`` [1, B, hidden]; returns [B, T, hidden] (the reverse direction reads ``x`` as given: the
    caller reverses its sequences). The weights are the module's public parameters of that direction."""
    suffix = "_reverse" if reverse else ""
    names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if lstm.bias else [])
    weights = [getattr(lstm, n + suffix) for n in names]
    # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return torch.lstm(x, (h0, h0), weights, lstm.bias, 1, 0.0, lstm.training, False, True)[0]


def segment_max(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Max over consecutive segments of the rows of ``values`` [sum(lengths), F]; every length >= 1."""
    return torch.segment_reduce(values, "max", lengths=lengths, unsafe=True)


def tensor_version(t: torch.Tensor) -> int:
    """A counter that every in-place change of ``t`` (an optimizer step, ``load_state_dict``) increases."""
    return t._version
