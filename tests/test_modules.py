"""The building blocks of E2EECPE against hand computations: position weights (eq. 9), the biaffine
scorer (eq. 7), the clause CNN (eqs. 1-3), and the asymmetry of the full model's pair matrix."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ecpe.data.corpus import Document
from ecpe.data.vocab import Vocab
from ecpe.models import build_model
from ecpe.modules import Biaffine, ClauseCNN, position_weights


# ---- eq. 9: position weights ----------------------------------------------------------------------
# |D| = 3, eps = 1: A_pq = (3 - |p - q - 1| + 1) / 4, p = row (emotion), q = column (cause)
A3 = torch.tensor([
    [3 / 4, 2 / 4, 1 / 4],   # p = 0: |p-q-1| = 1, 2, 3
    [4 / 4, 3 / 4, 2 / 4],   # p = 1: 0, 1, 2
    [3 / 4, 4 / 4, 3 / 4],   # p = 2: 1, 0, 1
])


def test_position_weights_three_clauses_by_hand():
    a = position_weights(torch.tensor([3]))
    assert a.shape == (1, 3, 3)
    torch.testing.assert_close(a[0], A3)


def test_position_weights_peak_is_cause_just_before_emotion_and_matrix_is_asymmetric():
    a = position_weights(torch.tensor([6]))[0]
    for p in range(1, 6):
        assert a[p, p - 1] == 1.0  # cause clause right before the emotion clause
        assert a[p].max() == 1.0 and a[p].argmax() == p - 1
    assert a[0].max() < 1.0
    assert not torch.allclose(a, a.T)
    assert a[1, 0] > a[0, 1]
    assert (a > 0).all() and (a <= 1).all()


def test_position_weights_batched_with_longer_doc_are_zero_outside():
    a = position_weights(torch.tensor([3, 5]))
    assert a.shape == (2, 5, 5)
    torch.testing.assert_close(a[0, :3, :3], A3)
    assert (a[0, 3:, :] == 0).all() and (a[0, :, 3:] == 0).all()
    # |D| = 5: (5 - |p - q - 1| + 1) / 6
    want = torch.tensor([[(5 - abs(p - q - 1) + 1) / 6 for q in range(5)] for p in range(5)])
    torch.testing.assert_close(a[1], want)
    # an explicit, larger size pads both documents with zeros
    b = position_weights(torch.tensor([3, 5]), size=7)
    assert b.shape == (2, 7, 7)
    torch.testing.assert_close(b[:, :5, :5], a)
    assert (b[:, 5:, :] == 0).all() and (b[:, :, 5:] == 0).all()


def test_position_weights_eps():
    a = position_weights(torch.tensor([3]), eps=0.5)[0]
    want = torch.tensor([[(3 - abs(p - q - 1) + 0.5) / 3.5 for q in range(3)] for p in range(3)])
    torch.testing.assert_close(a, want)


# ---- eq. 7: biaffine ------------------------------------------------------------------------------
def test_biaffine_by_hand_on_three_clauses():
    bi = Biaffine(2)
    W = [[1.0, 2.0], [-3.0, 0.5]]
    b = [0.5, -1.0]
    with torch.no_grad():
        bi.affine.weight.copy_(torch.tensor(W))
        bi.affine.bias.copy_(torch.tensor(b))
    ze = [[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]
    zc = [[0.5, 1.0], [-1.0, 3.0], [2.0, 0.0]]
    m = bi(torch.tensor([ze]), torch.tensor([zc]))
    assert m.shape == (1, 3, 3)
    # M_pq = (W z^e_p + b)^T z^c_q, written out with plain Python
    want = []
    for p in range(3):
        u = [W[i][0] * ze[p][0] + W[i][1] * ze[p][1] + b[i] for i in range(2)]
        want.append([u[0] * zc[q][0] + u[1] * zc[q][1] for q in range(3)])
    torch.testing.assert_close(m[0], torch.tensor(want))
    # spot check one entry fully by hand: p = 1, q = 0: W (0, 2) + b = (4.5, 0); . (0.5, 1) = 2.25
    assert m[0, 1, 0].item() == pytest.approx(2.25)
    # rows are emotions, columns causes: with the same vertices on both sides M is still not symmetric
    z = torch.tensor([ze])
    mz = bi(z, z)[0]
    assert not torch.allclose(mz, mz.T)


def test_biaffine_batches_are_independent():
    torch.manual_seed(0)
    bi = Biaffine(4)
    ze, zc = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    m = bi(ze, zc)
    for k in range(3):
        torch.testing.assert_close(m[k], bi(ze[k:k + 1], zc[k:k + 1])[0])


# ---- the full model's pair matrix is directed ------------------------------------------------------
def test_model_pair_matrix_is_asymmetric(tiny_config):
    docs = [Document("1", [["今天", "天气", "不错"], ["他", "收到", "礼物"], ["很", "高兴"], ["回家"]], [(2, 1)])]
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config).eval()
    batch = model.tensorize(docs).batch([0])
    with torch.no_grad():
        scores = model(batch)
    m = scores["pair_logits"][0]
    assert m.shape == (4, 4)
    assert not torch.allclose(m, m.T, atol=1e-4)
    mhat = model.pair_probs(scores)[0]
    assert not torch.allclose(mhat, mhat.T, atol=1e-4)
    torch.testing.assert_close(scores["pair_weights"][0], position_weights(torch.tensor([4]))[0])


# ---- eqs. 1-3: the clause CNN ---------------------------------------------------------------------
def reference_cnn(cnn: ClauseCNN, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Per clause, unbatched: convolve the clause's own words (zero-padded up to the kernel width when
    shorter), max-pool, ReLU, concatenate."""
    rows = []
    for i, n in enumerate(lengths):
        parts = []
        for k, conv in zip(cnn.kernel_sizes, cnn.convs):
            xi = x[i, :n]
            if n < k:
                xi = torch.cat([xi, xi.new_zeros(k - n, xi.shape[1])])
            c = conv(xi.T[None])[0]  # [filters, windows]
            parts.append(torch.relu(c.max(dim=1).values))
        rows.append(torch.cat(parts))
    return torch.stack(rows)


@pytest.fixture
def embedded_clauses():
    """Word ids of 5 clauses (lengths 1, 2, 4, 5, 7; 0 = padding) embedded with a padding_idx embedding."""
    torch.manual_seed(0)
    lengths = [1, 2, 4, 5, 7]
    ids = torch.zeros(len(lengths), 7, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(1, 20, (n,))
    emb = nn.Embedding(20, 16, padding_idx=0)
    return emb, ids, lengths


def test_clause_cnn_matches_per_clause_reference(embedded_clauses):
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(1)
    cnn = ClauseCNN(16, (2, 3, 4, 5), filters=4)
    assert cnn.out_dim == 16
    with torch.no_grad():
        out = cnn(emb(ids), torch.tensor(lengths))
        assert out.shape == (5, 16)
        torch.testing.assert_close(out, reference_cnn(cnn, emb(ids), lengths))


def output_and_grads(cnn: ClauseCNN, x: torch.Tensor, probe: torch.Tensor, forward) -> list[torch.Tensor]:
    """[output (float32), gradient of x, gradients of cnn's parameters] of ``(forward(x) * probe).sum()``."""
    xi = x.clone().requires_grad_()
    cnn.zero_grad()
    out = forward(xi).float()
    (out * probe).sum().backward()
    return [out, xi.grad] + [p.grad.clone() for p in cnn.parameters()]


def test_clause_cnn_gradients_match_reference(embedded_clauses):
    """The gathered-window encoder has the reference's gradients, for the word vectors and the filters."""
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(5)
    cnn = ClauseCNN(16, (2, 3, 4, 5), filters=4)
    x = emb(ids).detach()
    probe = torch.randn(5, 16)
    grads = [output_and_grads(cnn, x, probe, f)[1:]
             for f in (lambda x: cnn(x, torch.tensor(lengths)), lambda x: reference_cnn(cnn, x, lengths))]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want)


def test_clause_cnn_under_bf16_autocast_matches_the_reference_and_pads_nothing_into_the_gradients(embedded_clauses):
    """bf16 training's path: one product per tap over the words padded to ROW_BLOCK rows; the
    padding positions of the clauses get no gradient."""
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(5)
    cnn = ClauseCNN(16, (2, 3, 4, 5), filters=4)
    x = emb(ids).detach()
    probe = torch.randn(5, 16)

    def encode(lowp: bool):
        def forward(xi):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=lowp):
                return cnn(xi, torch.tensor(lengths))
        return forward

    results = [output_and_grads(cnn, x, probe, encode(lowp)) for lowp in (True, False)]
    assert results[0][0].shape == (5, 16)
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)
    assert not results[0][1][ids == 0].any()  # padding positions get no gradient, padded rows included


def test_tap_products_equal_the_window_products_and_their_gradients():
    """Shifted rows times each tap, added into the column suffix of the widths that have the tap, equal the
    gathered windows times the filters; the backward's products equal autograd's on the reference."""
    from ecpe.modules.cnn import _TapProducts

    torch.manual_seed(3)
    rows, dim, filters, widths = 7, 3, 2, (1, 2, 4)
    x = torch.randn(rows + max(widths) - 1, dim, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(filters, dim, k, dtype=torch.float64, requires_grad=True) for k in widths]
    taps = [torch.cat([w[:, :, j] for k, w in zip(widths, weights) if k > j]) for j in range(max(widths))]
    probe = torch.randn(rows, filters * len(widths), dtype=torch.float64)
    got = _TapProducts.apply(x, *taps)
    (got * probe).sum().backward()
    got_grads = [x.grad.clone(), *(w.grad.clone() for w in weights)]
    for t in (x, *weights):
        t.grad = None
    want = torch.cat([sum(x[j:j + rows] @ w[:, :, j].t() for j in range(k)) for k, w in zip(widths, weights)], 1)
    (want * probe).sum().backward()
    torch.testing.assert_close(got, want)
    for g, t in zip(got_grads, (x, *weights)):
        torch.testing.assert_close(g, t.grad)


def test_clause_cnn_under_bf16_autocast_keeps_the_order_of_its_kernel_sizes(embedded_clauses):
    """The tap products need the narrowest width first; the output keeps the configured order."""
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(6)
    cnn = ClauseCNN(16, (4, 2, 5, 3), filters=4)
    x = emb(ids).detach()
    with torch.no_grad():
        want = cnn(x, torch.tensor(lengths))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = cnn(x, torch.tensor(lengths))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("extra", [1, 3, 20])
def test_clause_cnn_ignores_extra_padding(embedded_clauses, extra):
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(2)
    cnn = ClauseCNN(16, (2, 3, 4, 5), filters=4)
    lens = torch.tensor(lengths)
    with torch.no_grad():
        base = cnn(emb(ids), lens)
        padded_ids = F.pad(ids, (0, extra))  # more zero (padding) columns in the word matrix
        torch.testing.assert_close(cnn(emb(padded_ids), lens), base)
        # the clauses alone, each trimmed to its own width (at least the widest kernel), agree too
        for i, n in enumerate(lengths):
            own = ids[i:i + 1, :max(n, 5)]
            torch.testing.assert_close(cnn(emb(own), lens[i:i + 1])[0], base[i])


def test_clause_cnn_garbage_after_long_clauses_is_masked(embedded_clauses):
    """For clauses at least as long as every kernel, no window that touches padding is pooled."""
    emb, ids, lengths = embedded_clauses
    torch.manual_seed(3)
    cnn = ClauseCNN(16, (2, 3, 4, 5), filters=4)
    lens = torch.tensor(lengths)
    with torch.no_grad():
        x = emb(ids)
        noisy = torch.cat([x, 100 * torch.randn(5, 4, 16)], dim=1)
        for i, n in enumerate(lengths):
            if n < 5:
                continue
            noisy[i, n:] = 100 * torch.randn(noisy.shape[1] - n, 16)
            torch.testing.assert_close(cnn(noisy[i:i + 1], lens[i:i + 1])[0], cnn(x, lens)[i])


def test_clause_cnn_short_clause_by_hand():
    """A one-word clause with kernel 2 pools its single first window [w, 0]: relu(W[:, :, 0] w + b)."""
    torch.manual_seed(4)
    cnn = ClauseCNN(3, (2,), filters=2)
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.zeros(1, 6, 3)
    x[0, 0] = w
    with torch.no_grad():
        out = cnn(x, torch.tensor([1]))
        conv = cnn.convs[0]
        want = torch.relu(conv.weight[:, :, 0] @ w + conv.bias)
    torch.testing.assert_close(out[0], want)


def test_clause_cnn_flat_batch_layout_matches_padded_clauses(tiny_config):
    """The model encodes a batch's clauses laid end to end (DocBatch.flat_words); that must give the
    vectors of the padded [clauses, words] matrix, clause by clause."""
    docs = [Document("1", [["今天"], ["他", "收到", "礼物"], ["很", "高兴", "今天", "天气", "不错", "回家"]], [(2, 1)]),
            Document("2", [["回家", "很"], ["高兴"]], [(1, 0)])]
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config).eval()
    batch = model.tensorize(docs).batch([0, 1])
    with torch.no_grad():
        flat = model.cnn.forward_flat(model.embed(batch.flat_words), batch.clause_starts, batch.clause_lens)
        padded = model.cnn(model.embed(batch.words), batch.clause_lens)
        ref = reference_cnn(model.cnn, model.embed(batch.words), batch.clause_lens.tolist())
    torch.testing.assert_close(flat, padded)
    torch.testing.assert_close(flat, ref)




def test_clause_cnn_from_projected_words_matches_the_convolution(tiny_config):
    """forward_projected over a vocabulary table (embeddings x tap matrices) gives forward_flat's vectors,
    with empty and one-word clauses, and with the table's rows indexed per position instead of per word."""
    docs = [Document("1", [["今天"], ["他", "收到", "礼物"], ["很", "高兴", "今天", "天气", "不错", "回家"]], [(2, 1)]),
            Document("2", [["回家", "很"], [], ["高兴"]], [(2, 0)])]
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config).eval()
    batch = model.tensorize(docs).batch([0, 1])
    cnn = model.cnn
    with torch.no_grad():
        want = cnn.forward_flat(model.embed(batch.flat_words), batch.clause_starts, batch.clause_lens)
        table = model.embed.weight @ cnn.projection().t()
        assert table.shape == (len(vocab), sum(cnn.kernel_sizes) * cnn.convs[0].out_channels)
        got = cnn.forward_projected(table, batch.flat_words, batch.clause_starts, batch.clause_lens)
        own = table[batch.flat_words]
        got_own = cnn.forward_projected(own, torch.arange(len(own)), batch.clause_starts, batch.clause_lens)
        # rows past the table (ids >= R) read from ``extra``: the same vectors from a split table
        R = len(vocab) // 2
        assert (batch.flat_words >= R).any() and (batch.flat_words < R).any()
        got_split = cnn.forward_projected(table[:R], batch.flat_words, batch.clause_starts, batch.clause_lens,
                                          extra=table[R:])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_own, want)
    torch.testing.assert_close(got_split, want)


def test_clause_cnn_empty_clause_does_not_see_its_neighbour():
    torch.manual_seed(5)
    cnn = ClauseCNN(3, (2, 3, 4, 5), filters=2)
    x = torch.zeros(3, 6, 3)
    x[0, :2], x[2, :3] = torch.randn(2, 3), 10 * torch.randn(3, 3)
    lengths = [2, 0, 3]
    with torch.no_grad():
        out = cnn(x, torch.tensor(lengths))
        # an empty clause sees only zeros: relu(bias) for every kernel
        torch.testing.assert_close(out[1], torch.cat([torch.relu(c.bias) for c in cnn.convs]))
        torch.testing.assert_close(out, reference_cnn(cnn, x, lengths))


def test_clause_cnn_single_empty_clause():
    cnn = ClauseCNN(3, (2, 3, 4, 5), filters=2)
    with torch.no_grad():
        out = cnn(torch.zeros(1, 5, 3), torch.tensor([0]))
        torch.testing.assert_close(out[0], torch.cat([torch.relu(c.bias) for c in cnn.convs]))


# ---- eq. 4: the BiLSTM over padded documents -------------------------------------------------------
def test_bilstm_padded_matches_packed_lstm():
    """Outputs and gradients equal those of the packed nn.LSTM; padding (and a zero-length row) give 0."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from ecpe.modules import bilstm_padded

    torch.manual_seed(6)
    lstm = nn.LSTM(8, 5, batch_first=True, bidirectional=True)
    x = torch.randn(5, 7, 8)
    lengths = torch.tensor([7, 3, 1, 5, 0])
    probe = torch.randn(5, 7, 10)
    results = []
    for packed in (True, False):
        xi = x.clone().requires_grad_()
        lstm.zero_grad()
        if packed:
            p = pack_padded_sequence(xi, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(lstm(p)[0], batch_first=True, total_length=7)
            h = h * (lengths > 0)[:, None, None]
        else:
            h = bilstm_padded(lstm, xi, lengths)
        (h * probe).sum().backward()
        results.append([h.detach(), xi.grad] + [p.grad.clone() for p in lstm.parameters()])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want)
    h = results[1][0]
    assert h[1, 3:].abs().sum() == 0 and h[4].abs().sum() == 0
    with pytest.raises(ValueError):
        bilstm_padded(nn.LSTM(8, 5, batch_first=True), x, lengths)


def test_swap_steps_equals_gather_bit_for_bit():
    """The reversal of each sequence within its length, and its gradient, are exactly those of gather."""
    from ecpe.modules.rnn import swap_steps

    torch.manual_seed(7)
    lengths = torch.tensor([6, 2, 0, 4])
    t = torch.arange(6)
    real = t[None, :] < lengths[:, None]
    rev = torch.where(real, lengths[:, None] - 1 - t[None, :], t[None, :])
    x = torch.randn(4, 6, 3)
    probe = torch.randn(4, 6, 3)
    got_x, want_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    got = swap_steps(got_x * 1.5, rev)
    want = (want_x * 1.5).gather(1, rev[:, :, None].expand(4, 6, 3))
    assert torch.equal(got, want) and torch.equal(got[0], (x[0] * 1.5).flip(0)) and torch.equal(got[2], x[2] * 1.5)
    (got * probe).sum().backward()
    (want * probe).sum().backward()
    assert torch.equal(got_x.grad, want_x.grad)


# ---- dropout with the fast p = 1/2 sampler -----------------------------------------------------------
def test_half_dropout_is_inverted_bernoulli_half():
    from ecpe.modules import Dropout

    torch.manual_seed(7)
    drop = Dropout(0.5)
    x = torch.rand(301, 7) + 0.5  # no zeros, an odd size (the last draw is partly used)
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], 2 * x[kept])
    assert abs(kept.float().mean().item() - 0.5) < 0.03
    # independent positions: neighbours agree about half of the time, rows differ
    assert abs((kept[:, 1:] == kept[:, :-1]).float().mean().item() - 0.5) < 0.03
    # gradient = the mask; evaluation = identity; another rate falls back to torch
    xg = x.clone().requires_grad_()
    out = drop(xg)
    out.sum().backward()
    torch.testing.assert_close(xg.grad, (out != 0).float() * 2)
    drop.eval()
    assert torch.equal(drop(x), x)
    d3 = Dropout(0.3).train()
    assert 0.6 < (d3(torch.ones(10000)) != 0).float().mean().item() < 0.8


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_half_mask_reads_each_draws_bits(dtype):
    """Position 16 i + j of the mask is 2 x bit j of the i-th 16-bit draw (the table lookup of half_mask
    gives the masks the shifts gave, draw for draw)."""
    from ecpe.modules.dropout import half_mask

    shape = torch.Size([37, 9])  # 333 positions: the last draw is partly used
    torch.manual_seed(3)
    got = half_mask(shape, dtype)
    torch.manual_seed(3)
    draws = torch.randint(0, 1 << 16, (21,), dtype=torch.int32)
    want = ((draws[:, None] >> torch.arange(16, dtype=torch.int32)) & 1).reshape(-1)[:333].to(dtype) * 2
    assert got.dtype == dtype and torch.equal(got, want.view(shape))


# ---- our pair-scorer term (modules.pair) -----------------------------------------------------------
def test_window_scorer_is_one_classifier_per_offset_from_each_pivot():
    """Cell (p, q) = u_k . h^e_p + b_k + v_k . h^c_q with k = p - q clipped to the window: checked cell by
    cell against that formula; zero before training."""
    from ecpe.modules import WindowScorer
    torch.manual_seed(0)
    ws = WindowScorer(3, max_distance=2)
    he, hc = torch.randn(2, 6, 3), torch.randn(2, 6, 3)
    assert (ws(he, hc) == 0).all()
    for w in ws.parameters():
        torch.nn.init.normal_(w)
    s = ws(he, hc)
    u, b, v = ws.emotion.weight, ws.emotion.bias, ws.cause.weight  # [5, 3], [5], [5, 3]: offsets -2 .. 2
    for n in range(2):
        for p in range(6):
            for q in range(6):
                k = max(-2, min(2, p - q)) + 2
                want = u[k] @ he[n, p] + b[k] + v[k] @ hc[n, q]
                torch.testing.assert_close(s[n, p, q], want)


# ---- our clause attention (modules.context) -------------------------------------------------------
def test_clause_attention_starts_as_identity_ignores_padding_and_follows_the_prior():
    from ecpe.modules import ClauseAttention
    torch.manual_seed(0)
    att = ClauseAttention(6, 4, heads=2)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    h = torch.randn(2, 4, 6) * mask[..., None]
    torch.testing.assert_close(att(h, mask), h)  # output projection at zero: the BiLSTM states untouched
    torch.nn.init.normal_(att.out.weight)
    out = att(h, mask)
    assert not torch.allclose(out, h) and (out[0, 3] == 0).all()  # padding clauses stay zero
    # what sits in a padding clause is never read
    h2 = h.clone()
    h2[0, 3] = 5.0
    torch.testing.assert_close(att(h2, mask)[0, :3], out[0, :3])
    # a prior that all but forbids every key except clause 1: every query reads clause 1's value alone
    prior = torch.full((2, 4), -1e4)
    prior[:, 1] = 0.0
    v1 = att.qkv(h)[:, 1, 8:]                                   # values of clause 1, [B, 4]
    want = (h + att.out(v1)[:, None]) * mask[..., None]
    torch.testing.assert_close(att(h, mask, prior=prior), want)
    with pytest.raises(ValueError, match="not a multiple of heads"):
        ClauseAttention(6, 5, heads=2)


# ---- the lazy Adam of the word embeddings ----------------------------------------------------------------
def test_row_sparse_adam_equals_torch_sparse_adam_bit_for_bit():
    """Same parameters and state as torch.optim.SparseAdam after steps with repeated words, a step without
    any word, and maximize."""
    from ecpe.training.trainer import RowSparseAdam

    for maximize in (False, True):
        torch.manual_seed(8)
        weights = torch.randn(30, 6)
        results = []
        for cls in (torch.optim.SparseAdam, RowSparseAdam):
            emb = nn.Embedding(30, 6, sparse=True)
            emb.weight.data.copy_(weights)
            opt = cls(emb.parameters(), lr=0.01, maximize=maximize)
            gen = torch.Generator().manual_seed(9)
            for step in range(6):
                opt.zero_grad()
                ids = torch.randint(0, 30, (0 if step == 3 else 40,), generator=gen)  # repeats; step 3: none
                probe = torch.randn(len(ids), 6, generator=gen)
                (emb(ids) * probe).sum().backward()
                opt.step()
            state = opt.state[emb.weight]
            results.append((emb.weight.detach().clone(), state["exp_avg"], state["exp_avg_sq"], state["step"]))
        (w0, m0, v0, s0), (w1, m1, v1, s1) = results
        assert torch.equal(w0, w1) and torch.equal(m0, m1) and torch.equal(v0, v1) and s0 == s1 == 6
        assert not torch.equal(w1, weights)
    dense = nn.Linear(2, 2)
    dense(torch.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="dense gradients"):
        RowSparseAdam(dense.parameters()).step()
