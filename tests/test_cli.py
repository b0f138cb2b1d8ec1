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
    assert "(default 0.3, as the paper)" in out and "(default 0.5)" in out


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
