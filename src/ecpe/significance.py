"""Paired t-test over folds (two-sided), as every comparison of runs reports it."""
from __future__ import annotations

import statistics
import warnings
from typing import Any, NamedTuple, Sequence

__all__ = ["PairedT", "paired_difference", "paired_ttest"]


class PairedT(NamedTuple):
    t: float
    p: float


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> PairedT:
    """``scipy.stats.ttest_rel(a, b)`` as floats: t and the two-sided p.

    Equal lists and fewer than two pairs give nan, as scipy does; its RuntimeWarnings about them are silenced.
    """
    from scipy.stats import ttest_rel  # heavy to import: on use only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = ttest_rel(a, b)
    return PairedT(float(res.statistic), float(res.pvalue))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a`` against ``b``, paired by position (one value a fold): the JSON every report writes.

    ``{"n", "mean_diff", "t", "p", "wins", "losses"}``: ``mean_diff`` is mean(a) - mean(b); ``t`` and ``p`` are
    :func:`paired_ttest`'s, ``None`` for fewer than two pairs; ``wins`` / ``losses`` count the pairs where ``a``
    is above / below ``b``.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no paired values")
    res = paired_ttest(a, b) if len(a) > 1 else None
    return {"n": len(a), "mean_diff": statistics.fmean(a) - statistics.fmean(b),
            "t": res.t if res else None, "p": res.p if res else None,
            "wins": sum(x > y for x, y in zip(a, b)), "losses": sum(x < y for x, y in zip(a, b))}
