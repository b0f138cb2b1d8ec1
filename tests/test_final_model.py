"""A model for use: ``ecpe train --final`` on every document, found without a path ($ECPE_MODEL, the default
model), and its card (``ecpe info``)."""
from __future__ import annotations

import json

import pytest
import torch

from helpers import make_corpus, write_split

from ecpe.cache import default_model_dir
from ecpe.cli import main
from ecpe.data.corpus import write_documents
from ecpe.inference import Extractor
from ecpe.training import NO_TEST, final_fold

TINY = ["--epochs", "2", "--embed-dim", "16", "--hidden", "8", "-q"]
TEXT = "老人非常高兴，把钱存进了银行。"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("final")
    docs = make_corpus(40, seed=0)
    write_split(root / "split10", docs[:30], docs[30:])
    write_split(root / "split10", docs[10:], docs[:10], fold=2)
    write_split(root / "split20", docs[:25], docs[30:])
    write_documents(docs[25:30], root / "split20" / "fold1_valid.txt")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ECPE_MODEL", raising=False)
    return tmp_path / "cache"


def test_final_fold_holds_every_document_once(data):
    fold = final_fold(data / "split20")
    assert len(fold.train) == 40 and fold.test == [] and len({d.doc_id for d in fold.train}) == 40
    assert len(final_fold(data / "split10").train) == 40


def test_final_model_has_no_test_figure_and_is_the_default_model(data, cache, capsys):
    assert main(["train", "--data", str(data), "--final", *TINY]) == 0
    out = capsys.readouterr()
    path = default_model_dir() / "model.pt"
    assert path.is_file() and str(cache) in str(path) and "this is the default model" in out.out
    ckpt = torch.load(path, weights_only=True)
    meta = ckpt["meta"]
    assert meta["test"] is None and NO_TEST in meta["protocol"] and meta["n_train"] == 36  # 40 less a 10 % dev share
    result = json.loads((path.parent / "result.json").read_text())
    assert "pair" not in result and result["n_test"] == 0 and NO_TEST in result["protocol"]
    assert "test" not in out.err.split("dev share")[0] or NO_TEST in out.err
    # found without a path: ecpe predict, Extractor.load()
    assert main(["predict", TEXT]) == 0
    assert json.loads(capsys.readouterr().out)["clauses"] == ["老人非常高兴", "把钱存进了银行"]
    assert Extractor.load().checkpoint["meta"]["protocol"] == meta["protocol"]
    # its card
    assert main(["info"]) == 0
    card = capsys.readouterr().out
    assert "not evaluated" in card and NO_TEST in card and "Chinese" in card and "36 training documents" in card
    assert "epochs=2" in card and "hidden=8" in card and "ecpe train --data" in card
    # replacing it needs --overwrite
    assert main(["train", "--data", str(data), "--final", *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_no_model_names_the_command_that_makes_it(cache, capsys):
    assert main(["predict", TEXT]) == 2
    err = capsys.readouterr().err
    assert "ecpe train --final --preset best" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(FileNotFoundError, match="ecpe train --final"):
        Extractor.load()


def test_ecpe_model_names_the_model(data, cache, tmp_path, monkeypatch, capsys):
    assert main(["train", "--data", str(data), "--final", "--out", str(tmp_path / "m"), *TINY]) == 0
    monkeypatch.setenv("ECPE_MODEL", str(tmp_path / "m" / "model.pt"))
    assert main(["predict", TEXT]) == 0
    monkeypatch.setenv("ECPE_MODEL", str(tmp_path / "missing.pt"))
    capsys.readouterr()
    assert main(["predict", TEXT]) == 2 and "$ECPE_MODEL names" in capsys.readouterr().err


def test_final_card_quotes_a_cross_validation_run_of_the_same_recipe_only(data, cache, tmp_path, capsys):
    cv = tmp_path / "cv"
    assert main(["train", "--data", str(data), "--out", str(cv), *TINY]) == 0
    assert main(["train", "--data", str(data), "--final", "--out", str(tmp_path / "m"), "--cv-run", str(cv),
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m" / "model.pt")]) == 0
    card = capsys.readouterr().out
    mean = json.loads((cv / "results.json").read_text())["mean"]["pair"]["f1"]
    assert f"pair F1 {mean:.4f}" in card and "dev-selected, split10, folds 1,2" in card
    assert main(["train", "--data", str(data), "--final", "--out", str(tmp_path / "m2"), "--cv-run", str(cv),
                 *TINY, "--epochs", "3"]) == 2
    assert "another recipe (epochs 2 -> 3)" in capsys.readouterr().err


def test_final_ensemble_and_refusals(data, cache, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["train", "--data", str(data), "--final", "--out", str(out), "--seeds", "1,2", *TINY]) == 0
    assert (out / "seed1" / "model.pt").is_file() and (out / "seed2" / "model.pt").is_file()
    assert "--model" in capsys.readouterr().out
    assert main(["predict", "--model", str(out / "seed1" / "model.pt"), "--model", str(out / "seed2" / "model.pt"),
                 TEXT]) == 0
    assert main(["train", "--data", str(data), "--final", "--select-on", "test", *TINY]) == 2
    assert main(["train", "--data", str(data), *TINY]) == 2  # no --out without --final
    assert "--out is required" in capsys.readouterr().err


def test_card_of_a_fold_model_quotes_its_test_figure(data, cache, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--folds", "1", *TINY]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "r" / "fold1" / "model.pt"), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["test"].startswith("pair F1 ") and "dev-selected, split10 fold 1" in card["test"]
    assert card["language"].startswith("Chinese")
