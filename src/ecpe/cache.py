"""Where downloaded data and trained word vectors are cached."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$ECPE_CACHE`` or ``~/.cache/ecpe``."""
    root = os.environ.get("ECPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ecpe")
    return Path(root)
