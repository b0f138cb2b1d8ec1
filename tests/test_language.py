"""A corpus's language: detected from its words or given by --lang; Chinese resources refused on a corpus of
another language; --preset best without them there; an English fixture trained, described and used end to end."""
from __future__ import annotations

import json
import random

import pytest
import torch

from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.data.corpus import Document
from ecpe.data.lang import check_language_code, detect_language, is_chinese, language_name
from ecpe.inference.card import model_card
from ecpe.options import PRESETS_NOT_CHINESE, check_resources, preset_settings

TINY = ["--epochs", "2", "--embed-dim", "16", "--hidden", "8", "--filters", "4", "--vertex-dim", "8", "-q"]

FILLER = ["today", "we", "went", "to", "the", "park", "and", "saw", "many", "people", "weather", "was", "nice", "he",
          "said", "it", "happened", "in", "city", "friends", "morning", "school", "home", "after"]


def english_corpus(n_docs: int = 30, seed: int = 0) -> list[Document]:
    """English documents in the corpus's shape: clause e says 'happy', its cause e - 1 'received a gift'."""
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        n = rng.randint(3, 7)
        e = rng.randint(1, n - 1)
        clauses = []
        for k in range(n):
            words = rng.sample(FILLER, rng.choice([2, 3, 4, 6]))
            if k == e:
                words.insert(rng.randint(0, len(words)), "happy")
            elif k == e - 1:
                words = words[:2] + ["received", "a", "gift"]
            clauses.append(words)
        docs.append(Document(str(i + 1), clauses, [(e, e - 1)]))
    return docs


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    docs = english_corpus()
    return write_split(tmp_path_factory.mktemp("en") / "split10", docs[:24], docs[24:])


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    docs = make_corpus(30, seed=1)
    return write_split(tmp_path_factory.mktemp("zh") / "split10", docs[:24], docs[24:])


def _docs(*clauses: str) -> list[Document]:
    return [Document("1", [c.split() for c in clauses])]


def test_detect_language_tells_chinese_english_and_others_apart():
    assert detect_language(make_corpus(20)) == "zh"
    assert detect_language(english_corpus(20)) == "en"
    assert detect_language(_docs("le chat est content", "parce que il fait beau")) == "und"   # Latin, not English
    assert detect_language(_docs("私 は とても 嬉しい です", "プレゼント を もらった")) == "und"  # Han with kana
    assert detect_language(_docs("2019 12", "3.5 %")) == "und"                            # no letters
    assert detect_language([]) == "und"
    assert is_chinese("zh") and is_chinese("zh-Hant") and not is_chinese("en")
    assert language_name("en") == "English" and language_name("zh-TW") == "Chinese"
    assert check_language_code("zh-Hant") == "zh-Hant"
    with pytest.raises(ValueError, match="ISO 639"):
        check_language_code("English")


def test_presets_for_other_languages_name_no_chinese_resource():
    from argparse import Namespace

    for name, settings in PRESETS_NOT_CHINESE.items():
        assert preset_settings(name, "en") == settings and preset_settings(name, "zh")["embeddings"] == "corpus"
        check_resources(Namespace(segmenter=None, **settings), "en", "test")  # refuses nothing
    assert preset_settings("paper", "en") == {}


def _refuse_chinese_resources(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a Chinese resource was used")

    for target in ("ecpe.embeddings.corpus_sentences", "ecpe.resources.corpus_sentences", "ecpe.training.setup.load_vectors",
                   "ecpe.training.setup.load_lexicon", "ecpe.data.text._get_jieba", "ecpe.data.text._get_rjieba"):
        monkeypatch.setattr(target, refuse)


def test_preset_best_on_an_english_corpus_trains_without_chinese_resources(english, tmp_path, monkeypatch, capsys):
    _refuse_chinese_resources(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "--data", str(english.parent), "--preset", "best", "--folds", "1", "--out", str(out),
                 *TINY]) == 0
    err = capsys.readouterr().err
    assert ("this corpus is English (detected from fold1_train.txt): --preset best means --embeddings train "
            "--open-vocab -1 --pair-scorer biaffine+window --max-distance 3 here (no Chinese resource)") in err, err
    fold = json.loads((out / "fold1" / "result.json").read_text())
    assert fold["embeddings"]["source"] == "word2vec trained on the training documents"
    path = out / "fold1" / "model.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["config"]["pair_scorer"] == "biaffine+window" and ckpt["config"]["max_distance"] == 3
    assert ckpt["preprocess"]["segmenter"] == "whitespace"
    card = model_card(ckpt)
    assert card["language"] == ("English (detected from fold1_train.txt); raw text split at clause punctuation, "
                                "words between spaces and punctuation")
    # raw English text in, without jieba
    assert main(["predict", "--model", str(path), "Yesterday we were happy, because we received a gift."]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clauses"] == ["Yesterday we were happy", "because we received a gift"]


@pytest.mark.parametrize("flags, named", [
    (["--embeddings", "corpus"], "--embeddings corpus is Chinese"),
    (["--embeddings", "corpus+cnsyn"], "--embeddings corpus is Chinese, --embeddings cnsyn is Chinese"),
    (["--lexicon", "dutir"], "--lexicon dutir is Chinese"),
    (["--segmenter", "jieba"], "--segmenter jieba is Chinese"),
    (["--preset", "best", "--embeddings", "synonyms"], "--embeddings synonyms is Chinese"),
])
def test_chinese_resources_are_refused_on_an_english_corpus_in_one_line(english, tmp_path, monkeypatch, capsys,
                                                                         flags, named):
    _refuse_chinese_resources(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "--data", str(english.parent), "--folds", "1", "--out", str(out), *TINY, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ecpe train: error: {named}, but this corpus is English (detected from fold1_train.txt; "
                          "--lang to say otherwise): use "), err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_preset_student_on_an_english_corpus_names_the_flags_that_leave_the_chinese_resources_out(
        english, tmp_path, monkeypatch, capsys):
    # --preset student is --preset best's Chinese recipe (corpus vectors, the DUTIR lexicon) plus transfer documents
    _refuse_chinese_resources(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "--data", str(english.parent), "--folds", "1", "--out", str(out), *TINY,
                 "--preset", "student"]) == 2
    err = capsys.readouterr().err
    assert "--embeddings corpus is Chinese, --lexicon dutir is Chinese, but this corpus is English" in err, err
    assert "--lexicon none" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_lang_overrides_the_detected_language(chinese, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(chinese.parent), "--folds", "1", "--out", str(out), *TINY, "--lang", "en",
                 "--embeddings", "corpus"]) == 2
    assert "--embeddings corpus is Chinese, but this corpus is English (--lang; " in capsys.readouterr().err
    assert main(["train", "--data", str(chinese.parent), "--folds", "1", "--out", str(out), *TINY,
                 "--lang", "English"]) == 2
    assert "--lang: expected a language code such as zh, en or fr" in capsys.readouterr().err


def test_a_chinese_corpus_keeps_jieba_and_records_its_language(chinese, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(chinese.parent), "--folds", "1", "--out", str(out), *TINY]) == 0
    ckpt = torch.load(out / "fold1" / "model.pt", weights_only=True)
    assert ckpt["preprocess"]["segmenter"] == "jieba"
    assert model_card(ckpt)["language"] == ("Chinese (detected from fold1_train.txt); raw text split at clause "
                                            "punctuation, words by jieba")
    assert "this corpus is" not in capsys.readouterr().err
