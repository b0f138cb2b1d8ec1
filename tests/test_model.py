"""E2EECPE as a whole: padding changes nothing, the log-space pair loss (eq. 15), the ablation switches
and the thresholded decoding (eq. 18)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import decode_py

from ecpe.config import ConfigError
from ecpe.data.corpus import Document
from ecpe.data.vocab import Vocab
from ecpe.models import build_model
from ecpe.models.e2eecpe import pair_loss
from ecpe.modules import position_weights

# a short document (3 clauses, one of a single word) and a longer one with a long clause
DOC_A = Document("a", [["他", "收到", "礼物"], ["高兴"], ["今天", "天气"]], [(1, 0)])
DOC_B = Document("b", [["早上", "我们", "去", "公园", "看到", "很多", "人", "在", "城市", "学校"], ["朋友", "说"],
                       ["事情", "发生"], ["他", "很", "高兴"], ["晚上"], ["回家"], ["天气", "不错"]], [(3, 2), (3, 1)])
DOCS = [DOC_A, DOC_B]


def make_model(tiny_config, seed=0, **over):
    vocab = Vocab.build(c for d in DOCS for c in d.clauses)
    torch.manual_seed(seed)
    return build_model("e2eecpe", vocab, {**tiny_config, **over}).eval()


def naive_bce(logits, weights, gold):
    """-sum[y log(sigmoid(M) A) + (1 - y) log(1 - sigmoid(M) A)] elementwise, in float64."""
    mhat = torch.sigmoid(logits.double()) * weights.double()
    return -(gold * torch.log(mhat) + (1 - gold) * torch.log(1 - mhat))


# ---- padding ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("over", [{}, {"clause_encoder": "lstm", "word_hidden": 5},
                                  {"clause_encoder": "lstm", "word_hidden": 5, "char_backoff": True},
                                  {"clause_encoder": "cnn+lstm", "word_hidden": 5},
                                  {"clause_context": "bilstm+attention"}, {"clause_context": "bilstm+emotion"}])
def test_padding_changes_no_prediction(tiny_config, over):
    model = make_model(tiny_config, **over)
    if over.get("clause_context"):  # move the clause attention off its zero start, or it adds nothing to test
        torch.nn.init.normal_(model.context.out.weight)
    alone = model.tensorize([DOC_A]).batch([0])
    both = model.tensorize(DOCS)
    ab, ba = both.batch([0, 1]), both.batch([1, 0])
    # the batches really differ in padding: more clauses per document and more words per clause
    assert alone.words.shape[1] < ab.words.shape[1] and alone.max_doc_len < ab.max_doc_len
    with torch.no_grad():
        s_alone, s_ab, s_ba = model(alone), model(ab), model(ba)
    p_alone, p_ab, p_ba = (model.pair_probs(s) for s in (s_alone, s_ab, s_ba))
    torch.testing.assert_close(p_ab[0, :3, :3], p_alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p_ba[1, :3, :3], p_alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s_ab["pair_logits"][0, :3, :3], s_alone["pair_logits"][0], rtol=1e-5, atol=1e-6)
    for key in ("emotion", "cause"):
        torch.testing.assert_close(s_ab[key][0, :3], s_alone[key][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(s_ba[key][1, :3], s_alone[key][0], rtol=1e-5, atol=1e-6)
    # outside the short document M-hat is exactly 0
    assert (p_ab[0, 3:, :] == 0).all() and (p_ab[0, :, 3:] == 0).all()
    # identical decoded predictions, even at a threshold low enough to report every real cell
    for eta in (None, 0.0, 0.2):
        d_alone = decode_py(model, s_alone, alone, threshold=eta)[0]
        d_ab = decode_py(model, s_ab, ab, threshold=eta)[0]
        d_ba = decode_py(model, s_ba, ba, threshold=eta)[1]
        for d in (d_ab, d_ba):
            assert [(e, c) for e, c, _ in d.pairs] == [(e, c) for e, c, _ in d_alone.pairs]
            assert [s for *_, s in d.pairs] == pytest.approx([s for *_, s in d_alone.pairs], abs=1e-6)
            assert d.emotions == d_alone.emotions and d.causes == d_alone.causes
    # at eta = 0 every real cell (and no padding cell) is a pair
    assert sorted((e, c) for e, c, _ in decode_py(model, s_ab, ab, threshold=0.0)[0].pairs) == \
        [(e, c) for e in range(3) for c in range(3)]


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    # the word embedding's gradient may be sparse
    return {n: p.grad.to_dense() if p.grad.is_sparse else p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None}


def test_padding_changes_no_loss_or_gradient(tiny_config):
    """The loss is a sum over real cells and real clauses divided by the batch's N real clauses, so
    N_AB * loss([A, B]) == N_A * loss([A]) + N_B * loss([B]), and the same for the gradients."""
    model = make_model(tiny_config)  # eval mode: no dropout
    both = model.tensorize(DOCS)
    a, b = model.tensorize([DOC_A]).batch([0]), both.batch([1])
    ab = both.batch([0, 1])
    n_a, n_b = 3, 7
    assert int(ab.mask.sum()) == n_a + n_b
    la, lb, lab = (model.loss(model(x), x) for x in (a, b, ab))
    assert (n_a + n_b) * lab.item() == pytest.approx(n_a * la.item() + n_b * lb.item(), rel=1e-5)
    ga = _grads(model, n_a * model.loss(model(a), a))
    gb = _grads(model, n_b * model.loss(model(b), b))
    gab = _grads(model, (n_a + n_b) * model.loss(model(ab), ab))
    assert set(gab) == set(gb)
    for name, g in gab.items():
        want = gb[name] + ga.get(name, torch.zeros_like(g))
        torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-6, msg=name)


def test_padding_cells_never_enter_the_loss(tiny_config):
    model = make_model(tiny_config)
    ab = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        scores = model(ab)
        clean = model.loss(scores, ab)
        pad = ~ab.mask
        pad_pairs = ~(ab.mask[:, :, None] & ab.mask[:, None, :])
        dirty = {k: v.clone() for k, v in scores.items()}
        dirty["pair_logits"][pad_pairs] = float("nan")
        dirty["emotion"][pad] = float("nan")
        dirty["cause"][pad] = float("nan")
        ab.pairs[pad_pairs] = 1.0  # gold labels in padding cells are ignored too
        assert torch.isfinite(model.loss(dirty, ab))
        torch.testing.assert_close(model.loss(dirty, ab), clean)


def test_loss_is_eq_15_to_17_over_real_cells(tiny_config):
    """(sum of pair BCE over real cells + beta * (emotion NLL + cause NLL)) / N, written out naively."""
    model = make_model(tiny_config, beta=0.7)
    ab = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        s = model(ab)
        total, n = 0.0, 0
        for b, doc in enumerate(DOCS):
            k = len(doc)
            gold = torch.zeros(k, k, dtype=torch.float64)
            for e, c in doc.pairs:
                gold[e, c] = 1
            total += naive_bce(s["pair_logits"][b, :k, :k], position_weights(torch.tensor([k]))[0], gold).sum().item()
            emo = torch.tensor([int(i in doc.emotions) for i in range(k)])
            cau = torch.tensor([int(i in doc.causes) for i in range(k)])
            aux = -(s["emotion"][b, torch.arange(k), emo].sum() + s["cause"][b, torch.arange(k), cau].sum())
            total += 0.7 * aux.item()
            n += k
        assert model.loss(s, ab).item() == pytest.approx(total / n, rel=1e-5)


# ---- pair loss -----------------------------------------------------------------------------------
def test_pair_loss_equals_naive_bce_where_finite():
    g = torch.Generator().manual_seed(0)
    logits = torch.empty(400).uniform_(-8, 8, generator=g)
    weights = torch.rand(400, generator=g) * 0.99 + 0.01
    weights[::7] = 1.0  # A = 1 on the p - q = 1 diagonal (and everywhere without position weights)
    gold = (torch.rand(400, generator=g) < 0.3).float()
    naive = naive_bce(logits, weights, gold.double())
    finite = torch.isfinite(naive)
    assert finite.float().mean() > 0.9
    for i in range(0, 400, 40):  # elementwise on slices
        sl = slice(i, i + 40)
        m = finite[sl]
        got = pair_loss(logits[sl][m], weights[sl][m], gold[sl][m])
        assert got.item() == pytest.approx(naive[sl][m].sum().item(), rel=1e-4)
    for i in torch.nonzero(finite).flatten()[:50].tolist():
        got = pair_loss(logits[i:i + 1], weights[i:i + 1], gold[i:i + 1])
        assert got.item() == pytest.approx(naive[i].item(), rel=1e-4, abs=1e-5)


def test_pair_loss_with_full_weight_has_finite_gradient():
    logits = torch.tensor([2.0, -1.0, 0.0, 5.0], requires_grad=True)
    weights = torch.ones(4)
    gold = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss = pair_loss(logits, weights, gold)
    loss.backward()
    # with A = 1 this is ordinary BCE-with-logits
    want = F.binary_cross_entropy_with_logits(logits.detach(), gold, reduction="sum")
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    torch.testing.assert_close(logits.grad, torch.sigmoid(logits.detach()) - gold)


def test_pair_loss_gradient_survives_saturation():
    # wrong and saturated: emotion-cause cell predicted 0 (M = -30) and non-pair predicted 1 (M = +30)
    logits = torch.tensor([-30.0, 30.0, -30.0], requires_grad=True)
    weights = torch.tensor([1.0, 1.0, 0.5])
    gold = torch.tensor([1.0, 0.0, 1.0])
    loss = pair_loss(logits, weights, gold)
    assert math.isfinite(loss.item())
    # -log sigmoid(-30) ~ 30 per cell, plus -log 0.5 for the third
    assert loss.item() == pytest.approx(30 + 30 + 30 + math.log(2), rel=1e-4)
    loss.backward()
    g = logits.grad
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g, torch.tensor([-1.0, 1.0, -1.0]), atol=1e-6, rtol=1e-6)
    # the clamped naive BCE on M-hat loses that gradient: none at all where sigmoid(M) rounds to 1,
    # a tiny, clamp-distorted one where M-hat underflows towards 0
    naive_logits = logits.detach().clone().requires_grad_(True)
    F.binary_cross_entropy(torch.sigmoid(naive_logits) * weights, gold, reduction="sum").backward()
    assert naive_logits.grad[1] == 0
    assert (naive_logits.grad.abs() < 0.2).all()


# ---- ablations -----------------------------------------------------------------------------------
def test_without_aux_there_are_no_auxiliary_heads(tiny_config):
    full = make_model(tiny_config)
    bare = make_model(tiny_config, use_aux=False)
    for name in ("emotion_hidden", "cause_hidden", "emotion_out", "cause_out"):
        assert hasattr(full, name) and not hasattr(bare, name)
    assert not any(n.startswith(("emotion_hidden", "cause_hidden", "emotion_out", "cause_out"))
                   for n, _ in bare.named_parameters())
    ab = bare.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        s = bare(ab)
        assert "emotion" not in s and "cause" not in s
        # the loss is the pair loss alone, over the real cells, divided by the number of real clauses
        mask = ab.mask[:, :, None] & ab.mask[:, None, :]
        want = pair_loss(s["pair_logits"][mask], s["pair_weights"][mask], ab.pairs[mask]) / 10
        torch.testing.assert_close(bare.loss(s, ab), want)
        # decoding takes emotions and causes from the predicted pairs
        eta = float(bare.pair_probs(s)[1, :7, :7].median())
        preds = decode_py(bare, s, ab, threshold=eta)
    for p in preds:
        assert p.pairs and p.emotion_prob is None and p.cause_prob is None
        assert p.emotions == sorted({e for e, _, _ in p.pairs})
        assert p.causes == sorted({c for _, c, _ in p.pairs})


def test_aux_loss_is_weighted_by_beta(tiny_config):
    ab = make_model(tiny_config).tensorize(DOCS).batch([0, 1])
    losses = {}
    for beta in (0.0, 1.0, 2.5):
        model = make_model(tiny_config, beta=beta)
        with torch.no_grad():
            losses[beta] = model.loss(model(ab), ab).item()
    aux = losses[1.0] - losses[0.0]
    assert aux > 0
    assert losses[2.5] - losses[0.0] == pytest.approx(2.5 * aux, rel=1e-4)
    with pytest.raises(ConfigError, match="E2EConfig.beta must be at least 0, got -1.0"):  # --beta -1
        make_model(tiny_config, beta=-1.0)


def test_without_position_weights_are_one_inside_documents(tiny_config):
    model = make_model(tiny_config, use_position=False)
    ab = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        s = model(ab)
    w = s["pair_weights"]
    assert w.shape == (2, 7, 7)
    assert (w[0, :3, :3] == 1).all() and (w[1] == 1).all()
    assert (w[0, 3:, :] == 0).all() and (w[0, :, 3:] == 0).all()
    torch.testing.assert_close(model.pair_probs(s)[1], torch.sigmoid(s["pair_logits"][1]))
    # with the switch on, the weights are eq. 9's
    with_pos = make_model(tiny_config)
    with torch.no_grad():
        torch.testing.assert_close(with_pos(ab)["pair_weights"], position_weights(torch.tensor([3, 7])))


# ---- decoding ------------------------------------------------------------------------------------
TARGET = torch.tensor([  # designed M-hat of a 3-clause document (rows = emotion p, columns = cause q);
    [0.125, 0.3125, 0.25],  # binary fractions, so "exactly eta" is exact in float32
    [0.875, 0.25, 0.1875],
    [0.5, 0.0625, 0.75],
])


def designed_scores(model, batch, target):
    """Scores whose M-hat is exactly ``target``: sigmoid(0) = 0.5 and A = 2 * target."""
    B, D = batch.batch_size, batch.max_doc_len
    weights = torch.zeros(B, D, D)
    weights[0, :3, :3] = 2 * target
    scores = {"pair_logits": torch.zeros(B, D, D), "pair_weights": weights}
    if model.config.use_aux:
        emo = torch.tensor([0.2, 0.8, 0.6] + [0.0] * (D - 3))
        cau = torch.tensor([0.7, 0.4, 0.51] + [0.0] * (D - 3))
        scores["emotion"] = torch.stack([1 - emo, emo], -1).log()[None].expand(B, D, 2)
        scores["cause"] = torch.stack([1 - cau, cau], -1).log()[None].expand(B, D, 2)
    return scores


@pytest.mark.parametrize("eta, want", [
    (None, {(0, 1), (1, 0), (2, 0), (2, 2)}),  # the model's eta = 0.3
    (0.25, {(0, 1), (1, 0), (2, 0), (2, 2)}),  # cells of exactly 0.25 are not above eta
    (0.5, {(1, 0), (2, 2)}),                   # nor is 0.5
    (0.0625, {(p, q) for p in range(3) for q in range(3)} - {(2, 1)}),
])
def test_decode_thresholds_at_eta(tiny_config, eta, want):
    model = make_model(tiny_config)
    assert model.config.threshold == 0.3
    batch = model.tensorize([DOC_A]).batch([0])
    scores = designed_scores(model, batch, TARGET)
    torch.testing.assert_close(model.pair_probs(scores)[0], TARGET, rtol=0, atol=0)
    pred = decode_py(model, scores, batch, threshold=eta)[0]
    got = {(p, q): s for p, q, s in pred.pairs}
    assert set(got) == want
    for (p, q), s in got.items():
        assert s == TARGET[p, q].item()
    # emotions and causes come from the auxiliary heads (probability > 0.5)
    assert pred.emotions == [1, 2] and pred.causes == [0, 2]
    assert pred.emotion_prob == pytest.approx([0.2, 0.8, 0.6]) and pred.cause_prob == pytest.approx([0.7, 0.4, 0.51])


def test_decode_uses_the_configured_threshold(tiny_config):
    model = make_model(tiny_config, threshold=0.5)
    batch = model.tensorize([DOC_A]).batch([0])
    pred = decode_py(model, designed_scores(model, batch, TARGET), batch)[0]
    assert {(p, q) for p, q, _ in pred.pairs} == {(1, 0), (2, 2)}


def test_decode_without_aux_takes_emotions_and_causes_from_pairs(tiny_config):
    model = make_model(tiny_config, use_aux=False)
    batch = model.tensorize(DOCS).batch([0, 1])
    scores = designed_scores(model, batch, TARGET)
    p0, p1 = decode_py(model, scores, batch)
    assert {(p, q) for p, q, _ in p0.pairs} == {(0, 1), (1, 0), (2, 0), (2, 2)}
    assert p0.emotions == [0, 1, 2] and p0.causes == [0, 1, 2]
    assert p1.pairs == [] and p1.emotions == [] and p1.causes == []
    assert p0.emotion_prob is None


def test_decode_keep_matrix(tiny_config):
    model = make_model(tiny_config)
    batch = model.tensorize(DOCS).batch([0, 1])
    scores = designed_scores(model, batch, TARGET)
    p0, p1 = decode_py(model, scores, batch, keep_matrix=True)
    torch.testing.assert_close(torch.tensor(p0.pair_prob), TARGET)
    assert len(p1.pair_prob) == 7 and all(len(r) == 7 for r in p1.pair_prob)


# ---- character backoff for unknown words (an extension, off by default) ---------------------------
# vocabulary of DOCS has the one-character words 他 去 人 在 说 很; 他人 is unknown, both its characters known
DOC_UNKNOWN = Document("u", [["他人", "说", "高兴"], ["天气", "好的"], ["早上"]], [(0, 1)])


def test_vocab_char_ids():
    vocab = Vocab.build(c for d in DOCS for c in d.clauses)
    assert vocab.char_ids("他人") == [vocab["他"], vocab["人"]]
    assert vocab.char_ids("他们的") == [vocab["他"]]     # 们, 的 are not words of the vocabulary
    assert vocab.char_ids("好的") == [] and vocab.char_ids("他") == []


def test_char_backoff_composes_unknown_words(tiny_config):
    model = make_model(tiny_config, char_backoff=True)
    V = len(model.vocab)
    t = model.tensorize([DOC_UNKNOWN])
    batch = t.batch([0])
    words = batch.flat_words
    assert int(words[0]) == V                                   # 他人: its own id past the vocabulary
    assert t.unknown_chars[0].tolist()[:2] == [model.vocab["他"], model.vocab["人"]]
    assert 1 in words.tolist()                                  # 好的: no known character -> <unk>
    with torch.no_grad():
        x = model.embed_words(words, batch.unknown_chars)
        want = (model.embed.weight[model.vocab["他"]] + model.embed.weight[model.vocab["人"]]) / 2
        torch.testing.assert_close(x[0], want)
        torch.testing.assert_close(x[words == 1][0], model.embed.weight[1])
        # without backoff the same word is <unk>
        plain = make_model(tiny_config)
        assert plain.tensorize([DOC_UNKNOWN]).batch([0]).flat_words[0] == 1
    model.train()
    out = model(batch)                                          # a full forward works with the extra ids
    assert out["pair_logits"].shape == (1, 3, 3)


def test_char_backoff_word_dropout_composes_dropped_words(tiny_config):
    """With every word dropped (alpha huge), multi-character words with known characters become the
    mean of those characters' vectors, the others <unk>."""
    docs = [Document("c", [["他人", "他", "人"], ["高兴"]], [(1, 0)])]
    vocab = Vocab.build(c for d in docs for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, {**tiny_config, "char_backoff": True, "word_dropout": 1e9}).train()
    words = model.tensorize(docs).batch([0]).flat_words
    x = model.embed_words(words)
    w = model.embed.weight
    torch.testing.assert_close(x[0], (w[vocab["他"]] + w[vocab["人"]]) / 2)
    torch.testing.assert_close(x[1], w[1])                      # 他: one character -> <unk>
    x.sum().backward()                                          # gradients reach the characters' rows
    assert model.embed.weight.grad is not None


# ---- inference: word projections from a table -------------------------------------------------------
@pytest.mark.parametrize("backoff, encoder", [(False, "cnn"), (True, "cnn"), (True, "cnn+lstm")])
def test_cached_word_projections_give_the_same_scores(tiny_config, backoff, encoder):
    """cache_word_projections changes no score beyond float rounding (unknown words composed of their
    characters included), is used only in eval mode without gradients, and follows weight updates
    (with cnn+lstm the table serves the CNN half)."""
    model = make_model(tiny_config, char_backoff=backoff, clause_encoder=encoder, word_hidden=5)
    batch = model.tensorize([*DOCS, DOC_UNKNOWN]).batch([0, 1, 2])
    if backoff:
        assert batch.unknown_chars is not None and len(batch.unknown_chars)
    with torch.no_grad():
        plain = model(batch)
        model.cache_word_projections()
        cached = model(batch)
        assert model._word_table is not None
    for key in plain:
        torch.testing.assert_close(cached[key], plain[key], rtol=1e-5, atol=1e-5)
    # the decoded output, every real cell with its score (eta = 0) and the auxiliary probabilities
    for a, b in zip(decode_py(model, cached, batch, threshold=0.0), decode_py(model, plain, batch, threshold=0.0)):
        assert [(e, c) for e, c, _ in a.pairs] == [(e, c) for e, c, _ in b.pairs]
        assert [v for *_, v in a.pairs] == pytest.approx([v for *_, v in b.pairs], abs=1e-5)
        assert a.emotion_prob == pytest.approx(b.emotion_prob, abs=1e-5)
    # a weight update (as an optimizer step makes, in place) rebuilds the table: the table is built, the
    # weights change in place, and the next cached forward must follow them (the plain scores are computed
    # with gradients on, where the table is not used, so the cache is never cleared in between)
    for update in (lambda: model.embed.weight.mul_(2.0), lambda: model.cnn.convs[0].weight.add_(0.1),
                   lambda: model.cnn.convs[-1].weight.mul_(-1.0)):
        with torch.no_grad():
            before = model(batch)                                   # the table of the current weights
            table = model.word_table()
            assert model(batch)["pair_logits"].equal(before["pair_logits"]) and model.word_table() is table  # reused
            update()                                                # changed after the table was built
            cached = model(batch)
        plain = model(batch)                                        # grad enabled: the table is not read
        assert model._cache_words and model.word_table() is not table
        assert not torch.allclose(before["pair_logits"], plain["pair_logits"])
        torch.testing.assert_close(cached["pair_logits"], plain["pair_logits"], rtol=1e-5, atol=1e-5)
    # with gradients (training) the table is not used: gradients still reach the embeddings
    model.train()
    model.loss(model(batch), batch).backward()
    assert model.embed.weight.grad is not None


def test_extractor_turns_the_table_on(tiny_config):
    from ecpe.inference import Extractor

    model = make_model(tiny_config)
    ex = Extractor(model)
    ex.extract({"clauses": [["他", "收到", "礼物"], ["高兴"]]})
    assert model._cache_words and model._word_table is not None


def test_decode_never_returns_padding_cells_even_below_zero(tiny_config):
    """eta < 0 keeps every real cell and no padded one (a short document batched with a long one)."""
    model = make_model(tiny_config)
    batch = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        preds = decode_py(model, model(batch), batch, threshold=-1.0)
    for doc, pred in zip(DOCS, preds):
        n = len(doc)
        assert {(p, q) for p, q, _ in pred.pairs} == {(p, q) for p in range(n) for q in range(n)}


def test_lstm_clause_encoder_reads_words_in_order_and_has_no_table(tiny_config):
    """--clause-encoder lstm: clause vectors from a word BiLSTM + attention (2 x word_hidden, no CNN), so word
    order matters (a CNN of width 2+ sees it too, but a bag of words would not); no word-projection table."""
    model = make_model(tiny_config, clause_encoder="lstm", word_hidden=5)
    assert model.cnn is None and model.lstm.input_size == 10
    model.prepare_for_inference()
    assert not model._cache_words
    flipped = Document("a", [list(reversed(c)) for c in DOC_A.clauses], DOC_A.pairs)
    with torch.no_grad():
        a, b = (model(model.tensorize([d]).batch([0]))["pair_logits"] for d in (DOC_A, flipped))
    assert not torch.allclose(a, b)
    both = make_model(tiny_config, clause_encoder="cnn+lstm", word_hidden=5)
    assert both.lstm.input_size == 10 + both.cnn.out_dim
    with pytest.raises(ConfigError, match="E2EConfig.clause_encoder must be one of cnn, lstm, cnn\\+lstm"):
        make_model(tiny_config, clause_encoder="gru")


@pytest.mark.parametrize("scorer", ["biaffine+window"])
def test_pair_scorers_start_as_the_paper_and_keep_padding_out(tiny_config, scorer):
    """--pair-scorer: untrained, the extra term is zero (same pair logits as eq. 7 alone, same seed); with
    it moved off zero, padding still changes nothing, and one training step moves it."""
    paper, model = make_model(tiny_config), make_model(tiny_config, pair_scorer=scorer, max_distance=2)
    batch = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        torch.testing.assert_close(model(batch)["pair_logits"], paper(batch)["pair_logits"])
        for p in model.pair_extra.parameters():
            p.add_(torch.randn_like(p))
        alone = model.tensorize([DOC_A]).batch([0])
        a, ab = model(alone), model(batch)
        torch.testing.assert_close(ab["pair_logits"][0, :3, :3], a["pair_logits"][0], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(ab["pair_logits"], paper(batch)["pair_logits"])
    model.train()
    before = [p.detach().clone() for p in model.pair_extra.parameters()]
    opt = torch.optim.SGD(model.pair_extra.parameters(), lr=0.1)
    model.loss(model(batch), batch).backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.pair_extra.parameters()))
    with pytest.raises(ConfigError, match="E2EConfig.pair_scorer must be one of biaffine, biaffine\\+window, got 'bilinear'"):
        make_model(tiny_config, pair_scorer="bilinear")
    with pytest.raises(ConfigError, match="max_distance must be at least 1"):
        make_model(tiny_config, pair_scorer=scorer, max_distance=0)


@pytest.mark.parametrize("context", ["bilstm+attention", "bilstm+emotion"])
def test_clause_contexts_start_as_the_paper_and_learn(tiny_config, context):
    """--clause-context: untrained, the attention adds zero (same scores as the paper's model, same seed);
    one training step moves it; with bilstm+emotion the emotion head's scores are the paper's whatever the
    attention does (it reads them, detached, and changes only the cause side)."""
    paper, model = make_model(tiny_config), make_model(tiny_config, clause_context=context)
    batch = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        for key in ("pair_logits", "emotion", "cause"):
            torch.testing.assert_close(model(batch)[key], paper(batch)[key])
    model.train()
    torch.manual_seed(1)
    before = [p.detach().clone() for p in model.context.parameters()]
    opt = torch.optim.SGD(model.context.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zero output layer, the second the queries, keys and values
        opt.zero_grad()
        model.loss(model(batch), batch).backward()
        opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.context.parameters()))
    model.eval()
    with torch.no_grad():
        moved, ref = model(batch), paper(batch)
    assert not torch.allclose(moved["cause"], ref["cause"])
    if context == "bilstm+emotion":
        torch.testing.assert_close(moved["emotion"], ref["emotion"])
    else:
        assert not torch.allclose(moved["emotion"], ref["emotion"])
    with pytest.raises(ConfigError, match="E2EConfig.clause_context must be one of bilstm, bilstm\\+attention, bilstm\\+emotion"):
        make_model(tiny_config, clause_context="gnn")
    with pytest.raises(ConfigError, match="needs use_aux"):
        make_model(tiny_config, clause_context="bilstm+emotion", use_aux=False)


def test_rank_loss_is_the_cross_entropy_of_gold_pairs_among_their_documents_pairs():
    """rank_loss: -mean over a document's gold pairs of log(M-hat_pq / sum of its real cells' M-hat),
    summed over documents; padding cells and documents without gold pairs add nothing; finite gradients."""
    from ecpe.models.e2eecpe import rank_loss
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 4, requires_grad=True)
    lens = torch.tensor([4, 2, 3])
    weights = position_weights(lens, 4, 1.0)
    real = torch.arange(4)[None] < lens[:, None]
    cells = real[:, :, None] & real[:, None, :]
    gold = torch.zeros(3, 4, 4)
    gold[0, 2, 1] = gold[0, 2, 2] = 1.0
    gold[1, 1, 0] = 1.0                                      # document 2 (index 2) has none
    got = rank_loss(logits, weights, gold, cells)
    mhat = torch.sigmoid(logits.detach().double()) * weights.double()
    want = 0.0
    for b in range(2):
        n = int(lens[b])
        total = mhat[b, :n, :n].sum()
        golds = gold[b].nonzero().tolist()
        want -= sum(math.log(mhat[b, p, q] / total) for p, q in golds) / len(golds)
    assert got.item() == pytest.approx(float(want), rel=1e-5)
    got.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[2] == 0).all() and (logits.grad[1, 2:] == 0).all()
    assert rank_loss(logits, weights, torch.zeros(3, 4, 4), cells).item() == 0.0


def test_pair_loss_bce_rank_adds_the_listwise_term(tiny_config):
    """--pair-loss bce+rank: the loss is eq. 15's plus rank_weight times rank_loss, on the same scores."""
    from ecpe.models.e2eecpe import rank_loss
    paper, model = make_model(tiny_config), make_model(tiny_config, pair_loss="bce+rank", rank_weight=0.5)
    batch = model.tensorize(DOCS).batch([0, 1])
    with torch.no_grad():
        s = model(batch)
        cells = batch.mask[:, :, None] & batch.mask[:, None, :]
        extra = 0.5 * rank_loss(s["pair_logits"], s["pair_weights"], batch.pairs, cells) / batch.mask.sum()
        assert extra > 0
        torch.testing.assert_close(model.loss(s, batch), paper.loss(paper(batch), batch) + extra)
    with pytest.raises(ConfigError, match="E2EConfig.pair_loss must be one of bce, bce\\+rank"):
        make_model(tiny_config, pair_loss="hinge")


def test_every_value_of_a_variant_field_builds_its_strategy(tiny_config):
    """Each value of the fields that choose a variant (ecpe.config) has its strategy (models.e2eecpe.variants),
    the paper's value the base class itself."""
    from ecpe.config import CLAUSE_CONTEXTS, PAIR_LOSSES, PAIR_SCORERS
    from ecpe.models.e2eecpe import variants

    for field, choices, attr, base in (("clause_context", CLAUSE_CONTEXTS, "context", variants.ClauseContext),
                                       ("pair_scorer", PAIR_SCORERS, "pair_extra", variants.PairScorer),
                                       ("pair_loss", PAIR_LOSSES, "pair_objective", variants.PairLoss)):
        kinds = [type(getattr(make_model(tiny_config, **{field: v}), attr)) for v in choices]
        assert kinds[0] is base and all(issubclass(k, base) for k in kinds) and len(set(kinds)) == len(choices)


def test_config_checks_its_fields_when_made():
    """E2EConfig refuses a value its field does not accept when it is made (ConfigError naming the field), so
    the Python API refuses what the command line refuses; the lexicon choices are ecpe.lexicon's."""
    from ecpe.config import E2EConfig
    from ecpe.lexicon import LEXICONS

    for field, bad in (("pair_loss", "hinge"), ("clauses", "pairs"), ("beta", -0.5), ("lexicon", "nrc")):
        with pytest.raises(ConfigError) as e:
            E2EConfig(**{field: bad})
        assert (e.value.field, e.value.value) == (field, bad)
    assert E2EConfig(lexicon=None).lexicon is None
    assert E2EConfig.__dataclass_fields__["lexicon"].metadata["cli"]["choices"] == tuple(LEXICONS)
