"""Command-line options that reach the model."""
from __future__ import annotations

import pytest

from ecpe.cli import build_parser, main


def test_train_takes_the_model_sizes(tmp_path, corpus, split_writer):
    """--hidden / --filters / --vertex-dim reach the model and its saved config."""
    from ecpe.models import load_model

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "1", "--embed-dim", "16",
               "--hidden", "8", "--filters", "3", "--vertex-dim", "5", "-q"])
    assert rc == 0
    model, _ = load_model(tmp_path / "run" / "fold1" / "model.pt")
    assert (model.config.hidden, model.config.filters, model.config.vertex_dim) == (8, 3, 5)
    assert model.lstm.hidden_size == 8 and model.cnn.out_dim == 12 and model.emotion_vertex.out_features == 5


def test_train_lstm_clause_encoder_saves_and_predicts(tmp_path, corpus, split_writer):
    """--clause-encoder lstm (with --ema) trains, is saved in the model's config and reloads to the same
    test scores that training wrote."""
    import json

    from ecpe.data.corpus import load_fold
    from ecpe.inference import evaluate, load_models
    from ecpe.models import load_model

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "2", "--embed-dim", "16",
               "--hidden", "8", "--clause-encoder", "lstm", "--ema", "0.9", "-q"])
    assert rc == 0
    model, _ = load_model(tmp_path / "run" / "fold1" / "model.pt")
    assert model.config.clause_encoder == "lstm" and model.word_encoder.out_dim == 200
    res = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())
    loaded, _ = load_models([tmp_path / "run" / "fold1" / "model.pt"])
    assert evaluate(loaded, loaded.tensorize(load_fold(split, 1).test))["pair"] == pytest.approx(res["pair"])


def test_train_refit_retrains_on_train_and_dev_for_the_chosen_epochs(tmp_path, corpus, split_writer):
    """--refit: the epoch count is chosen on dev, then a fresh model trains that many epochs on every
    training document (the dev share included) and is the one saved and scored."""
    import json

    from ecpe.data.corpus import load_fold
    from ecpe.inference import evaluate, load_models

    import dataclasses

    from ecpe.training import carve_dev

    train = list(corpus[:30])
    _, dev = carve_dev(train, 0.1, 1 * 1000 + 1)  # the dev share `ecpe train --seed 1` carves from fold 1
    for i, d in enumerate(train):  # a word that only the dev share holds
        if d in dev:
            train[i] = dataclasses.replace(d, clauses=[d.clauses[0] + ["只在开发集"], *d.clauses[1:]])
    split = split_writer(tmp_path / "split10", train, corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "3", "--embed-dim", "16",
               "--hidden", "8", "--refit", "-q"])
    assert rc == 0
    res = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())
    refit = res["refit"]
    assert refit["epochs"] == res["best_epoch"] == refit["selected_model"]["epoch"] >= 1
    assert refit["n_train"] == 30 and res["n_train"] == 27 and res["n_dev"] == 3  # the dev share trains too
    assert [e["epoch"] for e in refit["history"]] == list(range(1, refit["epochs"] + 1))
    assert all("dev" not in e for e in refit["history"])  # nothing is selected in a refit
    loaded, _ = load_models([tmp_path / "run" / "fold1" / "model.pt"])
    assert evaluate(loaded, loaded.tensorize(load_fold(split, 1).test))["pair"] == pytest.approx(res["pair"])
    assert "只在开发集" in loaded.vocab.itos  # the vocabulary covers the dev share's words as well


@pytest.mark.parametrize("flags, message", [(["--select-on", "test"], "--refit needs --select-on dev"),
                                            (["--teacher", "somewhere"], "--refit needs --select-on dev and no --teacher")])
def test_train_refit_is_refused_where_it_cannot_apply(flags, message, tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--refit", *flags, "-q"])
    assert rc == 2 and message in capsys.readouterr().err


def test_train_hidden_reaches_a_two_stage_model(tmp_path, corpus, split_writer):
    from ecpe.models import load_model

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--model", "inter-ec", "--epochs", "1",
               "--embed-dim", "16", "--hidden", "6", "-q"])
    assert rc == 0
    model, _ = load_model(tmp_path / "run" / "fold1" / "model.pt")
    assert model.config.hidden == 6


# ---- every flag applies to the chosen model or is refused ---------------------------------------------
@pytest.mark.parametrize("model, flags", [
    ("indep", ["--no-aux"]), ("inter-ec", ["--char-backoff"]), ("inter-ce", ["--no-position"]),
    ("indep", ["--word-dropout", "0.5"]), ("inter-ec", ["--filters", "3"]), ("inter-ec", ["--vertex-dim", "3"]),
    ("inter-ec", ["--freeze-embeddings"]), ("inter-ec", ["--lr", "0.1"]), ("indep", ["--batch-size", "8"]),
    ("inter-ce", ["--patience", "2"]), ("inter-ec", ["--l2", "0.1"]), ("e2eecpe", ["--no-filter"]),
    ("indep", ["--ema", "0.99"]), ("inter-ec", ["--clause-encoder", "lstm"]),
    ("inter-ec", ["--seeds", "1,2"]), ("indep", ["--refit"]),
])
def test_train_refuses_a_flag_the_model_does_not_read(model, flags, tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--model", model, *flags, "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert flags[0] in err and model in err, err
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_threshold_help_names_each_models_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "E2EECPE: pair threshold eta on M-hat, eq. 18 (default 0.3);" in out
    assert "the two-stage models: the filter keeps a candidate pair whose probability is above it; 0.5 = argmax " \
           "(default 0.5)" in out


def _train_actions():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {opt: a for a in sub.choices["train"]._actions for opt in a.option_strings}


def test_model_flags_come_from_the_config_fields():
    """Each model flag is declared once, on its config field (ecpe.config.option): MODEL_FLAGS, the flag's
    choices and the default its help shows are read from there; bool fields are switches to the opposite of
    their default."""
    from dataclasses import fields

    from ecpe.config import E2EConfig
    from ecpe.models import TwoStageConfig
    from ecpe.options import MODEL_FLAGS

    assert set(MODEL_FLAGS) == {
        "--embed-dim", "--hidden", "--threshold", "--beta", "--filters", "--vertex-dim", "--word-dropout",
        "--freeze-embeddings", "--char-backoff", "--lexicon", "--clause-encoder", "--clause-context", "--pair-scorer",
        "--pair-loss", "--max-distance", "--clauses", "--no-aux", "--no-position", "--no-filter"}
    assert MODEL_FLAGS["--no-aux"] == ("no_aux", "use_aux", False)
    assert MODEL_FLAGS["--freeze-embeddings"] == ("freeze_embeddings", "freeze_embeddings", True)
    assert MODEL_FLAGS["--pair-scorer"] == ("pair_scorer", "pair_scorer", None)
    actions = _train_actions()
    for cls in (E2EConfig, TwoStageConfig):
        for f in fields(cls):
            cli = f.metadata.get("cli")
            if not cli:
                continue
            flag = cli["flag"] or "--" + f.name.replace("_", "-")
            action = actions[flag]
            # an optional part (default None) also takes `none`, which leaves out what a preset put in
            none = ("none",) if f.default is None and cli["choices"] else ()
            assert tuple(action.choices or ()) == tuple(cli["choices"] or ()) + none
            if not isinstance(f.default, bool) and f.default is not None:
                assert f"(default {f.default})" in " ".join(action.help.split()), flag
    help_text = " ".join(a.help or "" for a in actions.values())
    assert "{" not in help_text  # every {field} reference was filled in


def test_train_help_quotes_no_measured_result(capsys):
    import re

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert not re.search(r"p = 0\.\d|F1 [+-]0\.\d|of [\d,]+ predicted", out), out


@pytest.mark.parametrize("argv,message", [
    (["--beta", "-1"], "--beta must be at least 0, got -1.0"),
    (["--pair-scorer", "biaffine+window", "--max-distance", "0"], "--max-distance must be at least 1, got 0"),
    (["--clause-context", "bilstm+emotion", "--no-aux"], "--clause-context must be a context that does not read the "
                                                         r"emotion head, without the auxiliary heads, got 'bilstm\+emotion'"),
])
def test_train_refuses_bad_model_values_under_the_flags_name(argv, message):
    from ecpe.options import CLIError, train_model_config

    with pytest.raises(CLIError, match=message):
        train_model_config(build_parser().parse_args(["train", "--out", "x", *argv]))


def test_epochs_caps_every_stage_of_a_two_stage_model(tmp_path, corpus, split_writer):
    import json

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--model", "inter-ec", "--epochs", "1",
               "--embed-dim", "16", "--hidden", "4", "-q"])
    assert rc == 0
    res = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())
    assert [e["stage"] for e in res["history"]] == ["stage1", "stage2"]
    assert {k: len(v) for k, v in res["stage_seconds"].items()} == {"stage1": 1, "stage2": 1}
    assert res["best_epochs"] == {"stage1": 1, "stage2": 1}


def test_model_configs_refuse_unknown_keys():
    from ecpe.config import ConfigError
    from ecpe.data.vocab import Vocab
    from ecpe.models import build_model

    with pytest.raises(ConfigError, match="filter"):
        build_model("e2eecpe", Vocab(["a"]), {"filter": False})
    with pytest.raises(ConfigError, match="use_aux"):
        build_model("inter-ec", Vocab(["a"]), {"use_aux": False})


@pytest.mark.parametrize("field,bad", [("epochs", 0), ("patience", 0), ("batch_size", 0), ("lr", 0.0), ("l2", -1e-5),
                                       ("ema", 1.0), ("ema", -0.1), ("select_on", "valid"), ("dev_fraction", 0.0),
                                       ("min_freq", 0), ("open_vocab", -2), ("corpus_window", 0),
                                       ("distill_weight", 1.5), ("threads", -1)])
def test_train_config_refuses_values_its_fields_do_not_accept(field, bad):
    from ecpe.config import ConfigError, TrainConfig, from_dict

    for build in (lambda: TrainConfig(**{field: bad}), lambda: from_dict(TrainConfig, {field: bad})):
        with pytest.raises(ConfigError, match=f"TrainConfig.{field} must be") as e:
            build()
        assert (e.value.field, e.value.value) == (field, bad)
    TrainConfig(**{field: getattr(TrainConfig(), field)})  # the default is accepted


@pytest.mark.parametrize("argv,message", [(["--epochs", "0"], "--epochs must be at least 1, got 0"),
                                          (["--ema", "1"], r"--ema must be a decay per step in \[0, 1\)"),
                                          (["--embeddings", "corpus", "--corpus-epochs", "0"],
                                           "--corpus-epochs must be at least 1, got 0")])
def test_train_refuses_bad_values_under_the_flags_name(argv, message):
    from ecpe.options import CLIError, train_config

    with pytest.raises(CLIError, match=message):
        train_config(build_parser().parse_args(["train", "--out", "x", *argv]))


def test_train_pair_scorer_is_saved_and_refused_for_two_stage(tmp_path, corpus, split_writer, capsys):
    """--pair-scorer biaffine+window --max-distance 3 trains, is saved in the model's config, reloads to the test
    scores training wrote; a two-stage model refuses the flag; the removed options are no flags."""
    import json

    from ecpe.data.corpus import load_fold
    from ecpe.inference import evaluate, load_models
    from ecpe.models.e2eecpe.variants import WindowPairScorer

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "2", "--embed-dim", "16",
               "--hidden", "8", "--pair-scorer", "biaffine+window", "--max-distance", "3", "-q"])
    assert rc == 0
    loaded, _ = load_models([tmp_path / "run" / "fold1" / "model.pt"])
    assert loaded.config.pair_scorer == "biaffine+window" and loaded.config.max_distance == 3
    assert isinstance(loaded.pair_extra, WindowPairScorer) and loaded.pair_extra.emotion.out_features == 7
    assert loaded.pair_extra.emotion.weight.abs().sum() > 0  # trained off its zero start
    res = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())
    assert evaluate(loaded, loaded.tensorize(load_fold(split, 1).test))["pair"] == pytest.approx(res["pair"])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "two"), "--model", "inter-ec",
               "--pair-scorer", "biaffine+window", "-q"])
    assert rc != 0 and "--pair-scorer does not apply to model 'inter-ec'" in capsys.readouterr().err
    for removed in (["--towers", "separate"], ["--exchange", "2"], ["--pair-scorer", "biaffine+mlp"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", *removed])


def test_train_clause_context_is_saved_and_refused_for_two_stage(tmp_path, corpus, split_writer, capsys):
    """--clause-context bilstm+emotion (with --pair-loss bce+rank) trains, is saved in the model's config and reloads with its trained
    attention; a two-stage model refuses the flag."""
    from ecpe.inference import load_models

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "2", "--embed-dim", "16",
               "--hidden", "8", "--clause-context", "bilstm+emotion", "--pair-loss", "bce+rank", "--beta", "2", "-q"])
    assert rc == 0
    loaded, _ = load_models([tmp_path / "run" / "fold1" / "model.pt"])
    assert loaded.config.clause_context == "bilstm+emotion" and loaded.config.pair_loss == "bce+rank"
    assert loaded.config.beta == 2.0
    assert loaded.context.out.weight.abs().sum() > 0  # trained off its zero start
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "two"), "--model", "inter-ec",
               "--clause-context", "bilstm+attention", "-q"])
    assert rc != 0 and "--clause-context does not apply to model 'inter-ec'" in capsys.readouterr().err
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "two"), "--model", "inter-ec",
               "--pair-loss", "bce+rank", "-q"])
    assert rc != 0 and "--pair-loss does not apply to model 'inter-ec'" in capsys.readouterr().err
