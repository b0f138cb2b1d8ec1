"""`ecpe train` into a run folder that holds finished folds: a fold is reused only when it was trained with
the same recipe (model, split, data, model and train config, preprocessing); otherwise the run is refused
before anything trains, or with --overwrite the differing folds are retrained."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from helpers import make_corpus, write_split

from ecpe.cli import main
from ecpe.config import TrainConfig, to_dict
from ecpe.data.corpus import write_documents
from ecpe.training.recipe import RECIPE_IGNORED, recipe_differences, recorded_recipe, train_recipe

TINY = ["--epochs", "1", "--embed-dim", "16", "--hidden", "8", "-q"]


def train(data, out, *flags):
    """``ecpe train`` of fold 1 of split10 with the tiny settings; later flags win."""
    return main(["train", "--data", str(data), "--split", "split10", "--folds", "1", "--out", str(out), *TINY, *flags])


def snapshot(root):
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset (split10 folds 1-2, split20 fold 1 with a valid file) and a run of split10 fold 1."""
    root = tmp_path_factory.mktemp("reuse")
    docs = make_corpus(40, seed=0)
    data = root / "data"
    write_split(data / "split10", docs[:30], docs[30:])
    write_split(data / "split10", docs[10:], docs[:10], fold=2)
    write_split(data / "split20", docs[:25], docs[30:])
    write_documents(docs[25:30], data / "split20" / "fold1_valid.txt")
    assert train(data, root / "run") == 0
    return data, root / "run"


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run folder for one test to change."""
    data, run = trained
    shutil.copytree(run, tmp_path / "run")
    return data, tmp_path / "run"


def test_same_settings_reuse_the_fold_without_training(run, tmp_path, capsys):
    """Also from a moved data folder, and with other --threads / --jobs / --device: none changes the recipe."""
    data, out = run
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    before = snapshot(out / "fold1")
    capsys.readouterr()
    assert train(moved, out, "--threads", "1", "--jobs", "2", "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert err.count(f"fold 1: reusing {out / 'fold1'} (e2eecpe, split10, same recipe)") == 1, err
    assert snapshot(out / "fold1") == before
    last = json.loads((out / "results.json").read_text())["last_invocation"]
    assert last["folds_reused"] == [1] and last["folds_trained"] == []


@pytest.mark.parametrize("flags, difference", [
    (["--epochs", "2"], "epochs 1 -> 2"), (["--hidden", "6"], "hidden 8 -> 6"), (["--lr", "0.01"], "lr 0.001 -> 0.01"),
    (["--split", "split20"], "split split10 -> split20"), (["--model", "inter-ec"], "model e2eecpe -> inter-ec"),
    (["--segmenter", "whitespace"], "segmenter jieba -> whitespace"),
])
def test_other_settings_are_refused_and_nothing_is_overwritten(run, capsys, flags, difference):
    data, out = run
    before = snapshot(out)
    capsys.readouterr()
    assert train(data, out, *flags) == 2
    err = capsys.readouterr().err
    assert f"ecpe train: error: {out / 'fold1'} was trained with other settings (" in err, err
    assert difference in err and "--out" in err and "--overwrite" in err, err
    assert snapshot(out) == before


def test_every_finished_fold_is_checked_not_only_the_requested_ones(run, capsys):
    data, out = run
    assert train(data, out, "--folds", "2", "--epochs", "2") == 2
    assert f"{out / 'fold1'} was trained with other settings (epochs 1 -> 2)" in capsys.readouterr().err
    assert not (out / "fold2").exists()
    assert train(data, out, "--folds", "2", "--epochs", "2", "--overwrite") == 0  # fold 1 deleted: one recipe only
    assert f"--overwrite: deleting {out / 'fold1'}" in capsys.readouterr().err
    assert not (out / "fold1").exists() and (out / "fold2" / "model.pt").exists()


def test_overwrite_retrains_with_the_new_settings(run, capsys):
    data, out = run
    flags = ["--split", "split20", "--model", "inter-ec", "--hidden", "4", "--overwrite"]
    assert train(data, out, *flags) == 0
    assert f"--overwrite: deleting {out / 'fold1'}, which was trained with other settings" in capsys.readouterr().err
    summary = json.loads((out / "results.json").read_text())
    assert (summary["model"], summary["split"], summary["config"]["model"]["hidden"]) == ("inter-ec", "split20", 4)
    assert summary["last_invocation"]["folds_trained"] == [1]
    ckpt = torch.load(out / "fold1" / "model.pt", weights_only=True)
    assert (ckpt["model"], ckpt["meta"]["split"], ckpt["config"]["hidden"]) == ("inter-ec", "split20", 4)
    recipe = json.loads((out / "fold1" / "result.json").read_text())["recipe"]
    assert (recipe["model"], recipe["split"], recipe["model_config"]["hidden"]) == ("inter-ec", "split20", 4)
    before = snapshot(out / "fold1")
    assert train(data, out, *flags) == 0  # the same recipe again: reused, --overwrite or not
    assert f"fold 1: reusing {out / 'fold1'} (inter-ec, split20, same recipe)" in capsys.readouterr().err
    assert snapshot(out / "fold1") == before


def test_a_result_without_a_recipe_is_checked_against_its_checkpoint(run, capsys):
    data, out = run
    result = out / "fold1" / "result.json"
    old = json.loads(result.read_text())
    del old["recipe"]
    result.write_text(json.dumps(old))
    assert train(data, out) == 0
    err = capsys.readouterr().err
    assert f"reusing {out / 'fold1'} (e2eecpe, split10, same settings as its model.pt records)" in err, err
    assert train(data, out, "--hidden", "6", "--epochs", "2") == 2
    assert "(hidden 8 -> 6, epochs 1 -> 2)" in capsys.readouterr().err
    (out / "fold1" / "model.pt").unlink()
    assert train(data, out) == 2
    err = capsys.readouterr().err
    assert f"{out / 'fold1'} records no settings" in err and "--overwrite" in err, err


def test_seeds_check_every_seed_folder_before_training(run, tmp_path, capsys):
    data, out = run
    seeds = tmp_path / "seeds"
    shutil.copytree(out / "fold1", seeds / "seed2" / "fold1")  # trained with seed 1
    assert train(data, seeds, "--seeds", "1,2") == 2
    assert f"{seeds / 'seed2' / 'fold1'} was trained with other settings (seed 1 -> 2)" in capsys.readouterr().err
    assert not (seeds / "seed1").exists()


def test_a_recipe_of_earlier_code_with_since_removed_keys_is_reused(run, capsys):
    """A fold trained before E2EECPE's towers / exchange options and TrainConfig.extra were removed records
    them at the paper's values: still the same recipe. One trained with such an option differs."""
    data, out = run
    result = out / "fold1" / "result.json"
    old = json.loads(result.read_text())
    old["recipe"]["model_config"].update(towers="shared", exchange=0)
    old["recipe"]["train"]["extra"] = {}
    del old["recipe"]["train"]["precision"]  # a TrainConfig field added since: its default is what was done
    result.write_text(json.dumps(old))
    assert train(data, out) == 0
    assert f"reusing {out / 'fold1'} (e2eecpe, split10, same recipe)" in capsys.readouterr().err
    old["recipe"]["model_config"]["towers"] = "separate"
    result.write_text(json.dumps(old))
    assert train(data, out) == 2
    assert "was trained with other settings (towers separate -> (unset)" in capsys.readouterr().err


def test_a_transfer_run_recorded_without_a_weight_is_weight_one():
    """A transfer run recorded with weight None (the default before `--preset student` set 0.1) is the run at
    `--transfer-weight 1`, and differs from one at 0.1; a run without transfer documents keeps None."""
    def written(**kw):  # a recipe's train settings as earlier code wrote them
        return {"train": {k: v for k, v in to_dict(TrainConfig(**kw)).items() if k not in RECIPE_IGNORED}}

    def asked(**kw):
        return {"train": train_recipe(to_dict(TrainConfig(**kw)))}

    old = recorded_recipe(written(transfer="runs/t"))
    assert recipe_differences(old, asked(transfer="runs/t", transfer_weight=1.0)) == []
    assert recipe_differences(old, asked(transfer="runs/t", transfer_weight=0.1)) == ["transfer_weight 1.0 -> 0.1"]
    assert asked()["train"]["transfer_weight"] is None
    assert recipe_differences(recorded_recipe(written()), asked()) == []
