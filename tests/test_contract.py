"""Every registered model honours the one model contract (ecpe.models.base), round trip included, and a
checkpoint written by earlier code (config version 1) loads and predicts the same."""
from __future__ import annotations

import inspect
import re

import pytest
import torch

from helpers import TINY

from ecpe.config import ConfigError, TrainConfig
from ecpe.data.corpus import Fold
from ecpe.inference import Extractor, decode_batches, predict
from ecpe.models import CONFIG_VERSION, MODELS, ECPEModel, load_model, migrate_config
from ecpe.models.base import Decoded
from ecpe.training import SCHEDULES, train_fold

SIZES = {"e2eecpe": TINY, "indep": {"embed_dim": 16, "hidden": 4}, "inter-ce": {"embed_dim": 16, "hidden": 4},
         "inter-ec": {"embed_dim": 16, "hidden": 4}}


def test_every_model_implements_the_contract():
    for name, cls in MODELS.items():
        assert issubclass(cls, ECPEModel) and cls.name == name
        assert not inspect.isabstract(cls), f"{name}: {cls.__abstractmethods__}"
        assert cls.schedule in SCHEDULES  # a schedule of ecpe.training drives it
        assert name in SIZES, f"add {name} to SIZES in tests/test_contract.py"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_train_save_load_predict(name, make_docs, tmp_path):
    """Train on a tiny corpus, save, load, predict on documents (decoded as tensors) and on raw text,
    including an empty text: the same predictions before and after the round trip."""
    torch.set_num_threads(1)
    docs = make_docs(30, seed=5)
    res = train_fold(name, Fold("split10", 1, docs[:24], docs[24:]), SIZES[name],
                     TrainConfig(epochs=1, patience=1, w2v_epochs=1, dev_fraction=0.2), tmp_path, progress=False)
    assert set(res["stage_seconds"]) <= {"model", "stage1", "stage2"} and res["history"]
    assert all({"stage", "epoch", "loss", "seconds", "best"} <= set(e) for e in res["history"])
    model, ckpt = load_model(tmp_path / "model.pt")
    assert ckpt["config_version"] == CONFIG_VERSION
    tensors = model.tensorize(docs[24:])
    for batch, decoded in decode_batches(model, tensors, batch_size=4):
        assert isinstance(decoded, Decoded) and decoded.pairs.dtype == torch.long and decoded.pairs.shape[1] == 3
        assert decoded.emotions.shape == batch.mask.shape and decoded.pair_prob.shape[1:] == (batch.max_doc_len,) * 2
        fresh = tensors.batch(batch.index)  # (the decoded batch was made in inference mode)
        assert model.loss(model(fresh), fresh).dim() == 0
    again, _ = load_model(tmp_path / "model.pt")
    assert predict(model, tensors) == predict(again, again.tensorize(docs[24:]))
    # the tensors of the prediction path (model.chunk_tensors, from clauses of words) predict the same
    assert predict(model, model.chunk_tensors([d.clauses for d in docs[24:]]), batch_size=4) == \
        predict(model, tensors, batch_size=4)
    ex = Extractor.load(tmp_path / "model.pt")
    assert ex.extract("")["pairs"] == []
    out = ex.extract("今天我们去公园，收到礼物。他很高兴。")
    assert len(out["clauses"]) == len(out["emotion_prob"]) == len(out["cause_prob"])


def old_checkpoint(path, tmp_path):
    """The checkpoint as the code of commits up to 825bd02 wrote it: no config version, and (for the
    oldest) no word_dropout / char_backoff, a loss_norm key."""
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config_version"]
    for k in ("word_dropout", "char_backoff"):
        ckpt["config"].pop(k, None)
    ckpt["config"]["loss_norm"] = "clause"
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    return old


def test_checkpoint_of_earlier_code_loads_and_predicts_the_same(tmp_path):
    from tiny_model import make_tiny_model

    tiny_model_path = make_tiny_model(tmp_path / "tiny.pt", threshold=0.5)
    old = old_checkpoint(tiny_model_path, tmp_path)
    new_model, _ = load_model(tiny_model_path)
    old_model, ckpt = load_model(old)
    assert ckpt["config_version"] == CONFIG_VERSION and "loss_norm" not in ckpt["config"]
    assert old_model.config.word_dropout == 0.0 and old_model.config.char_backoff is False
    text = "昨天上午，警察把丢失的钱交给了老人。老人非常高兴，把钱存进了银行。"
    a, b = Extractor(old_model).extract(text, matrix=True), Extractor(new_model).extract(text, matrix=True)
    assert a == b and a["pairs"]


def test_config_migration_steps():
    old = {"embed_dim": 8, "loss_norm": "clause"}
    assert migrate_config("e2eecpe", old, 1) == {"embed_dim": 8, "word_dropout": 0.0, "char_backoff": False}
    assert migrate_config("inter-ec", {"hidden": 4}, 1) == {"hidden": 4}
    assert migrate_config("e2eecpe", {"embed_dim": 8}, CONFIG_VERSION) == {"embed_dim": 8}
    with pytest.raises(ValueError, match="newer"):
        migrate_config("e2eecpe", {}, CONFIG_VERSION + 1)


def version2_checkpoint(path, tmp_path, **config):
    """The checkpoint as the code of commits up to 84eddee wrote it (config version 2, with the options removed
    at version 3), its config updated by ``config``."""
    ckpt = torch.load(path, weights_only=True)
    ckpt["config_version"] = 2
    ckpt["config"].update({"towers": "shared", "exchange": 0, **config})
    old = tmp_path / "v2.pt"
    torch.save(ckpt, old)
    return old


def test_checkpoint_of_a_removed_option_is_refused_naming_it(tmp_path):
    """A version-2 checkpoint at the paper's value of a removed option loads and predicts the same; one that
    uses the option is refused with one line naming the file, the option and the last commit that had it."""
    from tiny_model import make_tiny_model

    path = make_tiny_model(tmp_path / "tiny.pt", threshold=0.5)
    new_model, _ = load_model(path)
    old_model, ckpt = load_model(version2_checkpoint(path, tmp_path))
    assert ckpt["config_version"] == CONFIG_VERSION and not {"towers", "exchange"} & set(ckpt["config"])
    text = "昨天上午，警察把丢失的钱交给了老人。老人非常高兴，把钱存进了银行。"
    assert Extractor(old_model).extract(text, matrix=True) == Extractor(new_model).extract(text, matrix=True)
    for option, value in (("towers", "separate+emotion"), ("exchange", 3), ("pair_scorer", "biaffine+mlp"),
                          ("pair_scorer", "biaffine+distance")):
        old = version2_checkpoint(path, tmp_path, **{option: value})
        with pytest.raises(ConfigError) as e:
            load_model(old)
        assert re.fullmatch(rf"{re.escape(str(old))}: the model uses {option}={re.escape(repr(value))} \(.+\), an option "
                            "removed from ecpe after commit 84eddee; load it with ecpe at that commit", str(e.value))
        assert e.value.field == option and "\n" not in str(e.value)
    assert migrate_config("e2eecpe", {"pair_scorer": "biaffine+window", "towers": "shared"}, 2) == {
        "pair_scorer": "biaffine+window"}
    assert migrate_config("inter-ec", {"towers": "separate"}, 2) == {"towers": "separate"}  # E2EECPE's options only
