"""Paired t-test over folds (two-sided), as every comparison of runs reports it."""
from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

__all__ = ["PairedT", "paired_ttest"]


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
