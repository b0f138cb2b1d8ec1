"""The project's own errors: what a user can change is one line and exit 2; any other error is a bug and keeps its
traceback (``ecpe``'s main no longer turns every ValueError into "error")."""
from __future__ import annotations

import pytest

from ecpe import cli
from ecpe.batch import BatchFailure
from ecpe.config import ConfigError
from ecpe.data.corpus import DataFormatError
from ecpe.data.download import DownloadError
from ecpe.errors import ECPEError, MissingExtra, UsageError
from ecpe.inference import InputError
from ecpe.options import CLIError
from ecpe.resources import MissingResource
from ecpe.sweep import GridError
from ecpe.training import RecipeMismatch


def test_every_error_raised_for_the_user_is_an_ecpe_error_and_keeps_its_builtin_base():
    for cls in (ConfigError, DataFormatError, InputError, RecipeMismatch, BatchFailure, GridError):
        assert issubclass(cls, UsageError) and issubclass(cls, ValueError)
    assert issubclass(MissingResource, MissingExtra) and issubclass(MissingResource, RuntimeError)
    assert issubclass(DownloadError, FileNotFoundError)
    for cls in (CLIError, UsageError, MissingExtra, DownloadError):
        assert issubclass(cls, ECPEError)


def test_a_usage_error_is_one_line_and_exit_2(capsys):
    assert cli.main(["predict", "--model", "no/such/model.pt", "--device", "tpu", "text"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecpe predict: error: ") and len(err.strip().splitlines()) == 1


def test_a_bug_is_not_dressed_as_a_user_error(monkeypatch, capsys):
    def broken(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cli, "cmd_info", broken)
    with pytest.raises(ValueError, match="an internal invariant broke"):
        cli.main(["info", "x.pt"])
    assert "error:" not in capsys.readouterr().err
