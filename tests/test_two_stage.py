"""The two-stage baselines (Indep, Inter-CE, Inter-EC, with and without the pair filter): layers, stage-1
interactions, stage-2 candidates, and a train -> save -> load -> predict round trip for all six."""
from __future__ import annotations

import itertools
import random

import pytest
import torch

from ecpe.config import TrainConfig
from helpers import decode_py

from ecpe.data.corpus import Document, Fold
from ecpe.data.vocab import Vocab
from ecpe.metrics import Prediction
from ecpe.models import build_model, load_model
from ecpe.models.two_stage import CandidateTensors, TwoStageConfig, candidate_pairs, mean_clause_f1
from ecpe.modules.rnn import AttentionClauseEncoder, BiLSTM, pack_clauses, tf_lstm_init_
from ecpe.inference import predict
from ecpe.training import train_fold

MODELS = ("indep", "inter-ce", "inter-ec")
TINY = {"embed_dim": 8, "hidden": 4, "pos_dim": 4, "stage1_epochs": 2, "stage2_epochs": 2,
        "stage1_batch_size": 4, "stage2_batch_size": 4}
WORDS = ["今天", "我们", "去", "公园", "看到", "人", "天气", "不错", "他", "说"]


def tiny_corpus(n: int = 24, seed: int = 0) -> list[Document]:
    """Clause e holds 高兴, its cause is clause e - 1 (收到 礼物); one clause per document is single-word."""
    rng = random.Random(seed)
    docs = []
    for k in range(n):
        size = rng.randint(3, 6)
        e = rng.randint(1, size - 1)
        clauses = [rng.sample(WORDS, rng.randint(1, 4)) for _ in range(size)]
        clauses[e] = clauses[e] + ["高兴"]
        clauses[e - 1] = clauses[e - 1][:1] + ["收到", "礼物"]
        docs.append(Document(str(k + 1), clauses, [(e, e - 1)]))
    return docs


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return tiny_corpus()


@pytest.fixture(scope="module")
def vocab(docs) -> Vocab:
    return Vocab.build(c for d in docs for c in d.clauses)


def make(name: str, vocab: Vocab, **overrides):
    torch.manual_seed(0)
    return build_model(name, vocab, {**TINY, **overrides}).eval()


# ---- layers ------------------------------------------------------------------------------------------
def test_bilstm_ignores_padding_and_zeroes_empty_sequences():
    torch.manual_seed(0)
    rnn = BiLSTM(3, 2)
    x = torch.randn(3, 5, 3)
    lengths = torch.tensor([5, 2, 0])
    out = rnn(x, lengths)
    assert out.shape == (3, 5, 4)
    assert torch.allclose(out[1], torch.cat([rnn(x[1:2, :2], torch.tensor([2]))[0], torch.zeros(3, 4)]), atol=1e-6)
    assert torch.all(out[2] == 0) and torch.all(out[1, 2:] == 0)


def test_tf_lstm_init_has_forget_bias_one_and_glorot_kernels():
    lstm = tf_lstm_init_(torch.nn.LSTM(6, 4, bidirectional=True))
    assert torch.all(lstm.bias_ih_l0[4:8] == 1) and torch.all(lstm.bias_ih_l0[:4] == 0)
    assert torch.all(lstm.bias_hh_l0_reverse == 0)
    bound = (6 / (6 + 4 + 16)) ** 0.5
    assert lstm.weight_ih_l0.abs().max() <= bound and lstm.weight_hh_l0.abs().max() <= bound


def test_attention_encoder_matches_a_padded_computation():
    """Packed encoding = BiLSTM over each clause's real words + masked attention; empty clauses give 0."""
    torch.manual_seed(0)
    enc = AttentionClauseEncoder(3, 2)
    table = torch.nn.Embedding(6, 3, padding_idx=0)
    words = torch.tensor([[1, 2, 3], [4, 0, 0], [0, 0, 0], [5, 1, 0]])
    lengths = torch.tensor([3, 1, 0, 2])
    s = enc(pack_clauses(words, lengths).map(table))
    assert s.shape == (4, 4)
    assert torch.all(s[2] == 0)
    for k in (0, 1, 3):
        n = int(lengths[k])
        h, _ = enc.lstm(table(words[k, :n])[:, None, :])                 # [n, 1, 4]
        h = h[:, 0]
        a = enc.attention.score(torch.tanh(enc.attention.proj(h))).squeeze(-1)
        expected = (torch.softmax(a, 0)[:, None] * h).sum(0)
        assert torch.allclose(s[k], expected, atol=1e-5)


# ---- stage 1 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_shapes(name, docs, vocab):
    model = make(name, vocab)
    batch = model.tensorize(docs[:5]).batch(range(5))
    scores = model(batch)
    B, D = batch.batch_size, batch.max_doc_len
    assert scores["emotion"].shape == scores["cause"].shape == (B, D, 2)
    assert torch.allclose(scores["emotion"].exp().sum(-1), torch.ones(B, D))
    assert scores["candidates"].shape[1] == 3 and scores["keep"].shape == (len(scores["candidates"]),)
    loss = model.stage1.loss(model.stage1(batch), batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert len(decode_py(model, scores, batch)) == B


def _perturbed(model, batch, tower: str):
    """Stage-1 scores before and after changing one tower's softmax output."""
    before = model.stage1(batch)
    with torch.no_grad():
        getattr(model.stage1, f"{tower}_tower").out.bias.add_(torch.tensor([-3.0, 3.0]))
    return before, model.stage1(batch)


@pytest.mark.parametrize("name, changed, listener, coupled", [
    ("inter-ec", "emotion", "cause", True),
    ("inter-ec", "cause", "emotion", False),
    ("inter-ce", "cause", "emotion", True),
    ("inter-ce", "emotion", "cause", False),
    ("indep", "emotion", "cause", False),
    ("indep", "cause", "emotion", False),
])
def test_interaction(name, changed, listener, coupled, docs, vocab):
    """Inter-EC conditions causes on the emotion tower's output, Inter-CE the reverse, Indep neither."""
    model = make(name, vocab)
    batch = model.tensorize(docs[:4]).batch(range(4))
    before, after = _perturbed(model, batch, changed)
    m = batch.mask
    assert not torch.allclose(before[changed][m], after[changed][m])
    assert (not torch.allclose(before[listener][m], after[listener][m], atol=1e-7)) == coupled


def test_interaction_gradient_reaches_the_first_tower(vocab, docs):
    """p^E is not detached: the cause loss of Inter-EC trains the emotion tower."""
    model = make("inter-ec", vocab)
    batch = model.tensorize(docs[:4]).batch(range(4))
    scores = model.stage1(batch)
    torch.nn.functional.nll_loss(scores["cause"][batch.mask], batch.cause[batch.mask]).backward()
    assert model.stage1.emotion_tower.out.weight.grad.abs().sum() > 0


def test_softmax_layers_alone_get_l2(vocab):
    model = make("inter-ce", vocab)
    groups = model.stage1.param_groups(1e-5)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    expected = {id(p) for t in (model.stage1.emotion_tower, model.stage1.cause_tower) for p in t.out.parameters()}
    assert decayed == expected
    assert all(p.requires_grad for g in groups for p in g["params"])
    assert not model.embed.weight.requires_grad  # frozen, shared by both stages, stored once
    assert sum(k.endswith("embed.weight") for k in model.state_dict()) == 1


def test_mean_clause_f1():
    assert mean_clause_f1({"emotion": {"f1": 0.8}, "cause": {"f1": 0.6}, "pair": {"f1": 0.0}}) == pytest.approx(0.7)


# ---- stage 2 -----------------------------------------------------------------------------------------
def test_candidates_on_a_hand_example(vocab):
    docs = [Document("a", [["今天"], ["我们", "去"], ["公园"], ["他", "说"]], [(2, 1), (2, 2)]),
            Document("b", [["天气"], ["不错"], ["高兴"]], [(2, 1)]),
            Document("c", [["看到"], ["人"]], [(1, 0)])]
    preds = [Prediction([], [0, 2], [1, 3]), Prediction([], [2], [2]), Prediction([], [], [0])]
    assert candidate_pairs([2, 0], [3, 1]) == [(0, 1), (0, 3), (2, 1), (2, 3)]
    model = make("inter-ec", vocab)
    cands = CandidateTensors(model.tensorize(docs), preds)
    assert len(cands) == 5  # 2 x 2 in a, the diagonal (2, 2) in b, none in c (no emotion predicted)
    got = list(zip(cands.doc.tolist(), cands.emotion.tolist(), cands.cause.tolist(), cands.label.tolist()))
    assert got == [(0, 0, 1, 0), (0, 0, 3, 0), (0, 2, 1, 1), (0, 2, 3, 0), (1, 2, 2, 0)]
    batch = cands.batch([2, 4])
    assert batch.offset.tolist() == [-1, 0] and batch.label.tolist() == [1, 0]
    vocab_words = model.vocab.itos
    clause = lambda row: [vocab_words[i] for i in batch.words[row, :batch.clause_lens[row]].tolist()]
    assert [clause(int(r)) for r in batch.emotion] == [["公园"], ["高兴"]]
    assert [clause(int(r)) for r in batch.cause] == [["我们", "去"], ["高兴"]]
    assert model.stage2(batch).shape == (2, 2)
    # training passes drop the last incomplete batch, evaluation passes keep it
    assert [len(b.label) for b in cands.batches(2, shuffle=True, seed=1)] == [2, 2]
    assert [len(b.label) for b in cands.batches(2)] == [2, 2, 1]


def _fixed_stage1(model, emotions: torch.Tensor, causes: torch.Tensor):
    """Replace stage 1 by fixed predictions ([B, D] 0/1)."""
    def forward(batch):
        to_log = lambda y: torch.log(torch.stack([1 - y, y], -1) * 0.98 + 0.01)
        return {"emotion": to_log(emotions.float()), "cause": to_log(causes.float())}
    model.stage1.forward = forward


@pytest.mark.parametrize("use_filter", [False, True])
def test_pairs_are_the_filtered_cartesian_product(use_filter, docs, vocab):
    model = make("indep", vocab, filter=use_filter)
    batch = model.tensorize(docs[:3]).batch(range(3))
    B, D = batch.batch_size, batch.max_doc_len
    emotions, causes = torch.zeros(B, D, dtype=torch.long), torch.zeros(B, D, dtype=torch.long)
    emotions[0, [0, 2]] = 1
    causes[0, [1, 2]] = 1
    emotions[1, 1] = 1           # document 1: an emotion but no cause -> no candidate
    emotions[2, 0] = causes[2, 0] = 1
    _fixed_stage1(model, emotions, causes)
    preds = decode_py(model, model(batch), batch)
    for b, p in enumerate(preds):
        product = set(itertools.product(p.emotions, p.causes))
        pairs = {(e, c) for e, c, _ in p.pairs}
        if use_filter:
            assert pairs <= product
            assert all(s > 0.5 for _, _, s in p.pairs)
        else:
            assert pairs == product and all(s == 1.0 for _, _, s in p.pairs)
    assert preds[0].emotions == [0, 2] and preds[0].causes == [1, 2] and preds[1].pairs == []
    if not use_filter:
        assert sorted((e, c) for e, c, _ in preds[0].pairs) == [(0, 1), (0, 2), (2, 1), (2, 2)]
    # the filter's decisions follow the threshold
    keep_all = decode_py(model, model(batch), batch, threshold=-1.0)
    assert {(b, e, c) for b, p in enumerate(keep_all) for e, c, _ in p.pairs} == \
        {(b, e, c) for b, p in enumerate(keep_all) for e, c in itertools.product(p.emotions, p.causes)}


def test_a_filtered_model_decodes_without_its_filter(docs, vocab):
    """config.filter = False on a trained filtered model keeps every candidate of the same stage 1."""
    model = make("inter-ec", vocab)
    batch = model.tensorize(docs[:3]).batch(range(3))
    B, D = batch.batch_size, batch.max_doc_len
    _fixed_stage1(model, torch.ones(B, D, dtype=torch.long), torch.ones(B, D, dtype=torch.long))
    with_filter = decode_py(model, model(batch), batch)
    model.config.filter = False
    without = decode_py(model, model(batch), batch)
    for p, q in zip(with_filter, without):
        assert {(e, c) for e, c, _ in q.pairs} == set(itertools.product(q.emotions, q.causes))
        assert {(e, c) for e, c, _ in p.pairs} <= {(e, c) for e, c, _ in q.pairs}
        assert all(s == 1.0 for _, _, s in q.pairs)


def test_filter_scores_reach_the_pair_matrix(docs, vocab):
    model = make("inter-ce", vocab)
    batch = model.tensorize(docs[:2]).batch(range(2))
    B, D = batch.batch_size, batch.max_doc_len
    _fixed_stage1(model, torch.ones(B, D, dtype=torch.long), torch.ones(B, D, dtype=torch.long))
    scores = model(batch)
    preds = decode_py(model, scores, batch, threshold=-1.0, keep_matrix=True)
    n = int(batch.doc_lens[0])
    assert len(preds[0].pair_prob) == n and len(preds[0].pairs) == n * n
    for e, c, s in preds[0].pairs:
        assert preds[0].pair_prob[e][c] == pytest.approx(s) and 0 < s < 1


# ---- end to end --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("use_filter", [True, False])
def test_train_save_load_predict(name, use_filter, tmp_path):
    torch.set_num_threads(1)
    corpus = tiny_corpus(30, seed=1)
    fold = Fold("split10", 1, corpus[:24], corpus[24:])
    cfg = TrainConfig(w2v_epochs=1, dev_fraction=0.2)
    res = train_fold(name, fold, {**TINY, "filter": use_filter}, cfg, tmp_path, progress=False)
    assert set(res["stage_seconds"]) == ({"stage1", "stage2"} if use_filter else {"stage1"})
    assert all(len(v) == 2 for v in res["stage_seconds"].values())
    assert [e["stage"] for e in res["history"]] == ["stage1"] * 2 + (["stage2"] * 2 if use_filter else [])
    # the record-only test scores follow stage 2 (stage 1 stays dev-selected)
    assert [("test" in e) for e in res["history"]] == [False] * 2 + ([True] * 2 if use_filter else [])
    assert ("paper_protocol_from_same_run" in res) == use_filter
    for task in ("pair", "emotion", "cause"):
        assert 0.0 <= res[task]["f1"] <= 1.0
    model, ckpt = load_model(tmp_path / "model.pt")
    assert ckpt["model"] == name and ckpt["config"]["filter"] is use_filter
    assert type(model).__name__ == {"indep": "Indep", "inter-ce": "InterCE", "inter-ec": "InterEC"}[name]
    assert (model.stage2 is not None) == use_filter
    preds = predict(model, model.tensorize(fold.test))
    assert len(preds) == len(fold.test)
    for d, p in zip(fold.test, preds):
        assert len(p.emotion_prob) == len(p.cause_prob) == len(d)
        assert {(e, c) for e, c, _ in p.pairs} <= set(itertools.product(p.emotions, p.causes))
    from ecpe.inference import evaluate

    again = evaluate(model, model.tensorize(fold.test))
    assert {t: again[t]["f1"] for t in again} == {t: res[t]["f1"] for t in ("pair", "emotion", "cause")}


def test_config_defaults_are_the_reference_values():
    c = TwoStageConfig()
    assert (c.stage1_lr, c.stage1_epochs, c.stage1_batch_size, c.stage1_dropout) == (0.005, 15, 32, 0.2)
    assert (c.stage2_lr, c.stage2_epochs, c.stage2_batch_size, c.stage2_dropout) == (0.005, 20, 32, 0.5)
    assert (c.max_clause_len, c.l2, c.hidden, c.pos_dim, c.filter, c.tune_embeddings) == (30, 1e-5, 100, 50, True, False)


def test_extractor_on_a_two_stage_model(vocab, docs):
    """Raw-input prediction (ecpe predict) works for a two-stage model, with its pair matrix."""
    from ecpe.inference import Extractor

    model = make("inter-ec", vocab)
    ex = Extractor(model, {"preprocess": {"segmenter": "whitespace"}})
    out = ex.extract_many([{"clauses": docs[0].clauses}, ""], threshold=-1.0, matrix=True)
    n = len(docs[0])
    assert len(out[0]["emotion_prob"]) == len(out[0]["cause_prob"]) == len(out[0]["pair_matrix"]) == n
    first = predict(model, model.tensorize(docs[:1]), threshold=-1.0)[0]
    assert len(out[0]["pairs"]) == len(first.emotions) * len(first.causes)
    assert out[1]["pairs"] == []
    # a document whose only clause has no word: zero clause vectors, no error
    empty = ex.extract({"clauses": [[]]}, threshold=-1.0)
    assert len(empty["emotion_prob"]) == 1
