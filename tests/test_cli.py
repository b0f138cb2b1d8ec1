"""Command-line options that reach the model."""
from __future__ import annotations

from ecpe.cli import main


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


def test_train_hidden_reaches_a_two_stage_model(tmp_path, corpus, split_writer):
    from ecpe.models import load_model

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--model", "inter-ec", "--epochs", "1",
               "--embed-dim", "16", "--hidden", "6", "-q"])
    assert rc == 0
    model, _ = load_model(tmp_path / "run" / "fold1" / "model.pt")
    assert model.config.hidden == 6
