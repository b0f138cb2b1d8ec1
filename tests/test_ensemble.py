"""Ensembles of E2EECPE models: mean probabilities, decoded as one model."""
from __future__ import annotations

import json

import pytest
import torch

from ecpe.cli import main
from ecpe.data import Vocab
from ecpe.inference import Ensemble
from ecpe.models import build_model, save_model
from ecpe.inference import Extractor
from ecpe.inference import evaluate, predict, predict_documents
from ecpe.inference.arrays import predict_chunk


def _model(corpus, tiny_config, seed, docs=None, **extra):
    torch.manual_seed(seed)
    vocab = Vocab.build(c for d in (docs or corpus) for c in d.clauses)
    return build_model("e2eecpe", vocab, {**tiny_config, **extra}).eval()


def test_one_member_ensemble_is_the_model(corpus, tiny_config):
    m = _model(corpus, tiny_config, 0)
    t = m.tensorize(corpus)
    single = predict(m, t, threshold=0.05)
    ens = predict_documents(Ensemble([m]), corpus, threshold=0.05)
    for a, b in zip(single, ens):
        assert [(p, q) for p, q, _ in a.pairs] == [(p, q) for p, q, _ in b.pairs]
        assert a.emotions == b.emotions and a.causes == b.causes
        assert max(abs(x - y) for x, y in zip(a.emotion_prob, b.emotion_prob)) < 1e-6
    assert Ensemble([m]).evaluate(corpus) == evaluate(m, t)


def test_members_are_averaged_through_their_own_vocabularies(corpus, tiny_config):
    a = _model(corpus, tiny_config, 0)
    b = _model(corpus, tiny_config, 1, docs=corpus[10:])  # another vocabulary: other word ids
    docs = corpus[:6]
    pa = predict(a, a.tensorize(docs), keep_matrix=True)
    pb = predict(b, b.tensorize(docs), keep_matrix=True)
    eta = 0.2
    out = predict_documents(Ensemble([a, b]), docs, threshold=eta, keep_matrix=True)
    for x, y, e, d in zip(pa, pb, out, docs):
        n = len(d.clauses)
        mean = [[(x.pair_prob[p][q] + y.pair_prob[p][q]) / 2 for q in range(n)] for p in range(n)]
        assert torch.allclose(torch.tensor(e.pair_prob, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64), atol=1e-6)
        assert [(p, q) for p, q, _ in e.pairs] == [(p, q) for p in range(n) for q in range(n) if mean[p][q] > eta]
        emo = [(u + v) / 2 for u, v in zip(x.emotion_prob, y.emotion_prob)]
        assert e.emotions == [k for k in range(n) if emo[k] > 0.5]


def test_per_document_and_chunk_paths_of_an_ensemble_agree(corpus, tiny_config):
    """predict_documents (Prediction objects, the path of ecpe evaluate) and predict_chunk (arrays, the path
    of Extractor) run the same Ensemble.forward / decode: the same pairs with the same float scores, the
    same clause probabilities and pair matrices, bit for bit."""
    a = _model(corpus, tiny_config, 0)
    b = _model(corpus, tiny_config, 1, docs=corpus[10:], hidden=tiny_config["hidden"] * 2, char_backoff=True)
    ens, docs = Ensemble([a, b]), corpus[:15]
    for threshold in (None, 0.2):
        preds = predict_documents(ens, docs, threshold=threshold, keep_matrix=True, batch_size=4)
        res = predict_chunk(ens, [d.clauses for d in docs], threshold=threshold, keep_matrix=True, batch_size=4)
        n_pairs = 0
        for i, (p, d) in enumerate(zip(preds, docs)):
            n, c, o = len(d), int(res.clause_starts[i]), int(res.matrix_starts[i])
            s, e = int(res.pair_starts[i]), int(res.pair_starts[i + 1])
            chunk_pairs = [(q, r, v) for (q, r), v in zip(res.pairs[s:e].tolist(), res.pair_scores[s:e].tolist())]
            assert sorted(chunk_pairs) == sorted(p.pairs)  # the chunk path orders them by score
            assert res.emotion_prob[c:c + n].tolist() == p.emotion_prob
            assert res.cause_prob[c:c + n].tolist() == p.cause_prob
            assert res.matrix[o:o + n * n].reshape(n, n).tolist() == p.pair_prob
            n_pairs += len(p.pairs)
        assert n_pairs > 0


def test_members_of_different_configurations_are_averaged(corpus, tiny_config):
    # as research/ensemble.py averages variants: another size, char backoff, another vocabulary
    a = _model(corpus, tiny_config, 0)
    b = _model(corpus, tiny_config, 1, docs=corpus[10:], hidden=tiny_config["hidden"] * 2, char_backoff=True)
    docs = corpus[:6]
    pa = predict(a, a.tensorize(docs), keep_matrix=True)
    pb = predict(b, b.tensorize(docs), keep_matrix=True)
    out = predict_documents(Ensemble([a, b]), docs, threshold=0.2, keep_matrix=True)
    for x, y, e in zip(pa, pb, out):
        mean = (torch.tensor(x.pair_prob, dtype=torch.float64) + torch.tensor(y.pair_prob, dtype=torch.float64)) / 2
        assert torch.allclose(torch.tensor(e.pair_prob, dtype=torch.float64), mean, atol=1e-6)
        cause = [(u + v) / 2 for u, v in zip(x.cause_prob, y.cause_prob)]
        assert e.causes == [k for k, c in enumerate(cause) if c > 0.5]


def test_ensemble_refuses_models_it_cannot_average(corpus, tiny_config):
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    vocab = Vocab.build(c for d in corpus for c in d.clauses)
    with pytest.raises(ValueError, match="E2EECPE"):
        Ensemble([build_model("inter-ec", vocab, {"embed_dim": 8, "hidden": 4})])
    with pytest.raises(ValueError, match="without them"):
        Ensemble([_model(corpus, tiny_config, 0, use_aux=False)])


def test_cli_evaluate_and_predict_with_several_models(tmp_path, corpus, tiny_config, capsys):
    from ecpe.data.corpus import write_documents

    paths = [save_model(_model(corpus, tiny_config, s), tmp_path / f"m{s}.pt", {"segmenter": "jieba"}) for s in (0, 1)]
    data = tmp_path / "test.txt"
    write_documents(corpus[:10], data)
    rc = main(["evaluate", "--model", str(paths[0]), "--model", str(paths[1]), "--data", str(data), "--json"])
    out = capsys.readouterr().out
    assert rc == 0 and "ensemble of 2 e2eecpe models" in out
    metrics = json.loads(out.strip().splitlines()[-1])
    expected = Ensemble([Extractor.load(p).model for p in paths]).evaluate(corpus[:10])
    assert metrics["pair"] == expected["pair"]
    rc = main(["predict", "--model", str(paths[0]), "--model", str(paths[1]), "老人很高兴，他收到礼物"])
    r = json.loads(capsys.readouterr().out.strip())
    assert rc == 0 and len(r["clauses"]) == 2 and len(r["emotion_prob"]) == 2


def test_extractor_ensemble_info_and_segmenter_check(tmp_path, corpus, tiny_config):
    a = save_model(_model(corpus, tiny_config, 0), tmp_path / "a.pt", {"segmenter": "jieba"})
    b = save_model(_model(corpus, tiny_config, 1), tmp_path / "b.pt", {"segmenter": "whitespace"})
    with pytest.raises(ValueError, match="different segmenters"):
        Extractor.load([a, b])
    ex = Extractor.load([a, b], segmenter="jieba")
    assert ex.info["ensemble"] == [str(a), str(b)]
    assert ex.extract_many([{"clauses": [["老人", "很", "高兴"], ["他", "收到", "礼物"]]}])[0]["clauses"] == ["老人很高兴", "他收到礼物"]


def test_cli_train_seeds_writes_each_seed_and_the_ensemble(tmp_path, corpus, split_writer, capsys):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    out = tmp_path / "ens"
    rc = main(["train", "--data", str(split), "--out", str(out), "--seeds", "1,2", "--epochs", "2", "--embed-dim", "16",
               "-q"])
    captured = capsys.readouterr().out
    assert rc == 0
    for s in (1, 2):
        r = json.loads((out / f"seed{s}" / "results.json").read_text())
        assert r["seed"] == s and (out / f"seed{s}" / "fold1" / "model.pt").exists()
    res = json.loads((out / "ensemble.json").read_text())
    assert res["folds"] == [1] and len(res["per_fold"][0]["members"]) == 2
    assert "ensemble of 2 runs (members dev-selected), split10" in captured
    members = [Extractor.load(out / f"seed{s}" / "fold1" / "model.pt").model for s in (1, 2)]
    assert res["per_fold"][0]["ensemble"]["pair"] == Ensemble(members).evaluate(corpus[30:])["pair"]
    assert "--model" in captured  # how to predict with it


@pytest.mark.parametrize("argv, message", [(["--seeds", "1"], "two or more"), (["--seeds", "1,x"], "comma-separated"),
                                           (["--seeds", "1,2", "--model", "inter-ec"], "cannot be averaged")])
def test_cli_train_seeds_errors(tmp_path, corpus, split_writer, capsys, argv, message):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    assert main(["train", "--data", str(split), "--out", str(tmp_path / "o"), "-q", *argv]) == 2
    assert message in capsys.readouterr().err


def test_clauses_heads_plus_pairs_adds_the_clauses_of_every_pair(corpus, tiny_config):
    """clauses="heads+pairs": the emotion / cause lists are the heads' (probability > 1/2) plus the emotion /
    cause clause of each predicted pair, for one model and for an ensemble; pairs and probabilities unchanged."""
    docs = corpus[:8]
    a, b = _model(corpus, tiny_config, 0), _model(corpus, tiny_config, 0)  # (seed 0's heads leave clauses out)
    for model, run in ((a, lambda m: predict(m, m.tensorize(docs), threshold=-1.0)),
                       (Ensemble([a, b]), lambda m: predict_documents(m, docs, threshold=-1.0))):
        heads = run(model)
        for m in (model.models if isinstance(model, Ensemble) else [model]):
            m.config.clauses = "heads+pairs"
        both = run(model)
        for m in (model.models if isinstance(model, Ensemble) else [model]):
            m.config.clauses = "heads"
        grew = False
        for h, x in zip(heads, both):
            assert x.pairs == h.pairs and x.emotion_prob == h.emotion_prob
            assert x.emotions == sorted(set(h.emotions) | {p for p, _, _ in h.pairs})
            assert x.causes == sorted(set(h.causes) | {q for _, q, _ in h.pairs})
            grew |= x.emotions != h.emotions or x.causes != h.causes
        assert grew  # eta < 0: every cell is a pair, so clauses the heads leave out are added
    with pytest.raises(ValueError, match="clauses must be one of heads, heads\\+pairs"):
        _model(corpus, tiny_config, 0, clauses="pairs")


def test_cli_evaluate_clauses_overrides_the_model(tmp_path, corpus, split_writer, capsys):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    assert main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "1", "--embed-dim", "16",
                 "--hidden", "8", "--threshold", "0.05", "-q"]) == 0
    ckpt, test = str(tmp_path / "run" / "fold1" / "model.pt"), str(split / "fold1_test.txt")
    capsys.readouterr()
    out = {}
    for rule in ("heads", "heads+pairs"):
        assert main(["evaluate", "--model", ckpt, "--data", test, "--clauses", rule, "--json"]) == 0
        out[rule] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["heads"]["pair"] == out["heads+pairs"]["pair"]
    assert out["heads+pairs"]["cause"]["r"] >= out["heads"]["cause"]["r"]
    assert out["heads+pairs"]["emotion"]["r"] >= out["heads"]["emotion"]["r"]
    assert out["heads+pairs"] != out["heads"]


def test_evaluate_runs_clauses_override(tmp_path, corpus, tiny_config, split_writer):
    """research/ensemble.py --clauses: evaluate_runs applies the rule to every member and says so."""
    from ecpe.inference import evaluate_runs

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    runs = []
    for s in (0, 1):
        m = _model(corpus, tiny_config, s, threshold=-1.0)  # every cell a pair: the rule has clauses to add
        save_model(m, tmp_path / f"run{s}" / "fold1" / "model.pt", {"segmenter": "jieba"})
        runs.append(tmp_path / f"run{s}")
    heads = evaluate_runs(runs, split)
    both = evaluate_runs(runs, split, clauses="heads+pairs")
    assert "clauses" not in heads and both["clauses"] == "heads+pairs"
    for t in ("emotion", "cause"):  # every clause is now in a pair: recall 1 for members and ensemble
        assert both["per_fold"][0]["ensemble"][t]["r"] == 1.0
        assert all(m[t]["r"] == 1.0 for m in both["per_fold"][0]["members"])
    assert both["per_fold"][0]["ensemble"]["pair"] == heads["per_fold"][0]["ensemble"]["pair"]


def test_cli_evaluate_clauses_refused_for_two_stage(tmp_path, corpus, split_writer, capsys):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    assert main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--model", "inter-ec",
                 "--epochs", "1", "--embed-dim", "16", "-q"]) == 0
    capsys.readouterr()
    rc = main(["evaluate", "--model", str(tmp_path / "run" / "fold1" / "model.pt"), "--data",
               str(split / "fold1_test.txt"), "--clauses", "heads+pairs"])
    assert rc != 0 and "--clauses applies to e2eecpe models, not 'inter-ec'" in capsys.readouterr().err
