"""ecpe compare: runs against a baseline, paired over the folds they share."""
from __future__ import annotations

import json
import math
import warnings

import pytest
from scipy.stats import ttest_rel

from ecpe.cli import main
from ecpe.compare import compare, load_run
from ecpe.significance import paired_difference, paired_ttest


def write_run(path, f1s, protocol="dev-selected", model="e2eecpe"):
    per_fold = [{"fold": k + 1, **{t: {"p": f, "r": f, "f1": f} for t in ("pair", "emotion", "cause")},
                 "wall_seconds": 60.0, "embeddings": {"source": "corpus", "coverage": 0.9}} for k, f in enumerate(f1s)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"model": model, "protocol": protocol, "split": "split10",
                                                   "per_fold": per_fold}))
    return path


def test_compare_pairs_folds_and_tests(tmp_path, capsys):
    base = write_run(tmp_path / "base", [0.50, 0.52, 0.55, 0.51])
    new = write_run(tmp_path / "new", [0.56, 0.55, 0.60, 0.58, 0.70])   # fold 5: not in the baseline
    res = compare([load_run(new)], load_run(base))
    row = res["rows"][1]
    assert row["folds"] == [1, 2, 3, 4]
    assert row["mean"]["pair"]["f1"] == pytest.approx((0.56 + 0.55 + 0.60 + 0.58) / 4)
    want = ttest_rel([0.56, 0.55, 0.60, 0.58], [0.50, 0.52, 0.55, 0.51]).pvalue
    assert row["ttest"]["pair"]["p"] == pytest.approx(want)
    assert row["minutes"] == pytest.approx(5.0) and row["facts"]["source"] == "corpus"
    out = tmp_path / "cmp.json"
    assert main(["compare", str(new), "--baseline", str(base), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "split10, dev-selected, folds 1,2,3,4" in text and "paired t-test" in text
    assert json.loads(out.read_text())["rows"][1]["ttest"]["pair"]["p"] == pytest.approx(want)


def test_compare_refuses_mixed_protocols(tmp_path):
    base = write_run(tmp_path / "base", [0.5, 0.6])
    other = write_run(tmp_path / "other", [0.5, 0.7], protocol="paper: best epoch on test")
    with pytest.raises(ValueError, match="protocol"):
        compare([load_run(other)], load_run(base))


@pytest.mark.parametrize("a, b", [([0.56, 0.55, 0.60, 0.58], [0.50, 0.52, 0.55, 0.51]),
                                  ([0.61, 0.59], [0.60, 0.62]), ([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])])
def test_paired_ttest_is_scipys(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = ttest_rel(a, b)
    res = paired_ttest(a, b)
    assert type(res.t) is float and type(res.p) is float
    assert (res.t, res.p) == (float(want.statistic), float(want.pvalue))


@pytest.mark.parametrize("a, b", [([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]), ([0.6], [0.5]), ([], [])])
def test_paired_ttest_equal_lists_and_fewer_than_two_pairs_give_nan_silently(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = paired_ttest(a, b)
    assert math.isnan(res.t) and math.isnan(res.p)


def test_paired_difference_is_the_mean_difference_scipys_t_test_and_the_counts():
    a, b = [0.56, 0.55, 0.60, 0.58], [0.50, 0.56, 0.55, 0.58]
    d = paired_difference(a, b)
    want = ttest_rel(a, b)
    assert d["n"] == 4 and d["wins"] == 2 and d["losses"] == 1
    assert d["mean_diff"] == pytest.approx(0.025)
    assert d["t"] == pytest.approx(want.statistic) and d["p"] == pytest.approx(want.pvalue)
    one = paired_difference([0.6], [0.5])
    assert one["p"] is None and one["t"] is None and one["mean_diff"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([0.5, 0.6], [0.5])
