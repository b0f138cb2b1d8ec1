"""The private PyTorch interfaces behind ecpe.modules.compat, each against a public-API reference: a torch
upgrade that changes one fails here, loudly, instead of making results silently wrong."""
from __future__ import annotations

import torch
from torch import nn

from ecpe.modules.compat import lstm_direction, segment_max, tensor_version


def test_lstm_direction_is_each_direction_of_the_bidirectional_lstm():
    torch.manual_seed(0)
    bi = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    x = torch.randn(3, 7, 5, requires_grad=True)
    h0 = torch.zeros(1, 3, 4)
    for reverse in (False, True):
        uni = nn.LSTM(5, 4, batch_first=True)  # public reference: a one-direction LSTM with the same weights
        suffix = "_reverse" if reverse else ""
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(uni, name).copy_(getattr(bi, name + suffix))
        xr = x.flip(1) if reverse else x
        ref, _ = uni(xr, (h0, h0))
        out = lstm_direction(bi, xr, h0, reverse=reverse)
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
        # gradients reach this direction's parameters (and only them)
        bi.zero_grad()
        out.sum().backward()
        grads = {n: p.grad for n, p in bi.named_parameters()}
        assert all((grads[n] is not None) == (n.endswith("_reverse") == reverse) for n in grads)
        uni.zero_grad()
        ref.sum().backward()
        torch.testing.assert_close(grads["weight_ih_l0" + suffix], uni.weight_ih_l0.grad, rtol=1e-5, atol=1e-6)


def test_lstm_direction_follows_train_and_eval_without_bias():
    lstm = nn.LSTM(3, 2, batch_first=True, bidirectional=True, bias=False)
    x, h0 = torch.randn(2, 4, 3), torch.zeros(1, 2, 2)
    ref = nn.LSTM(3, 2, batch_first=True, bias=False).requires_grad_(False)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(lstm.weight_ih_l0)
        ref.weight_hh_l0.copy_(lstm.weight_hh_l0)
    torch.testing.assert_close(lstm_direction(lstm.eval(), x, h0), ref(x, (h0, h0))[0])


def test_segment_max_is_a_max_per_segment():
    torch.manual_seed(0)
    lengths = torch.tensor([1, 3, 2, 5, 1])
    values = torch.randn(int(lengths.sum()), 4, requires_grad=True)
    out = segment_max(values, lengths)
    ref = torch.stack([seg.max(0).values for seg in values.split(lengths.tolist())])
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    out.sum().backward()  # the gradient goes to each segment's maximum
    g = torch.zeros_like(values)
    for s, seg in zip(torch.cumsum(lengths, 0) - lengths, values.split(lengths.tolist())):
        g[int(s) + seg.argmax(0), torch.arange(4)] = 1.0
    torch.testing.assert_close(values.grad, g)


def test_tensor_version_counts_in_place_changes():
    lin = nn.Linear(3, 2)
    w = lin.weight
    v0 = tensor_version(w)
    with torch.no_grad():
        w.mul_(2.0)
    v1 = tensor_version(w)
    assert v1 > v0
    lin.load_state_dict({k: t.clone() + 1 for k, t in lin.state_dict().items()})  # copy_ in place
    v2 = tensor_version(w)
    assert v2 > v1
    lin(torch.randn(4, 3)).sum().backward()
    torch.optim.Adam(lin.parameters()).step()
    assert tensor_version(w) > v2
    _ = w.detach() + 1  # reading changes nothing
    assert tensor_version(w) == tensor_version(lin.weight)
