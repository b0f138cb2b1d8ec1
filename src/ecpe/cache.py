"""Where downloaded data and trained word vectors are cached."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "default_model_dir", "find_model", "MAKE_DEFAULT_MODEL"]


def cache_dir() -> Path:
    """``$ECPE_CACHE`` or ``~/.cache/ecpe``."""
    root = os.environ.get("ECPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ecpe")
    return Path(root)


def default_model_dir() -> Path:
    """Where ``ecpe train --final`` writes, and ``ecpe predict`` / ``ecpe serve`` / ``Extractor.load()`` look,
    when no model is named: ``<cache>/models/default``."""
    return cache_dir() / "models" / "default"


MAKE_DEFAULT_MODEL = "ecpe train --final --preset best"


def find_model() -> Path:
    """The model to use when none is named: ``$ECPE_MODEL``, else ``<cache>/models/default/model.pt``;
    FileNotFoundError naming the one command that makes it when there is none."""
    named = os.environ.get("ECPE_MODEL")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"$ECPE_MODEL names {path}, which is not a file")
        return path
    path = default_model_dir() / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no model given and none at {path}: make it with `{MAKE_DEFAULT_MODEL}` "
                                "(about 5 min on 2 cores), or give --model / set $ECPE_MODEL")
    return path
