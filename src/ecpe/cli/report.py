"""How the ``ecpe`` command prints metrics and ensembles (every figure with its protocol, split and folds)."""
from __future__ import annotations

import sys




def _fmt(m: dict) -> str:
    return f"P {m['p']:.4f}  R {m['r']:.4f}  F1 {m['f1']:.4f}"


def print_metrics(title: str, metrics: dict, std: dict | None = None, out=None) -> None:
    out = out or sys.stdout
    print(title, file=out)
    for task in ("pair", "emotion", "cause"):
        if task not in metrics or not metrics[task]:
            continue
        m = metrics[task]
        if std and std.get(task):
            s = std[task]
            line = "  ".join(f"{k.upper() if k != 'f1' else 'F1'} {m[k]:.4f} ± {s[k]:.4f}" for k in ("p", "r", "f1"))
        else:
            line = _fmt(m)
        print(f"  {task:8s} {line}", file=out)


def print_ensemble(res: dict, out=None) -> None:
    """The summary of :func:`ecpe.inference.evaluate_runs`: the ensemble, each member run, the test."""
    out = out or sys.stdout
    n, folds = len(res["runs"]), ",".join(map(str, res["folds"]))
    print_metrics(f"ensemble of {n} runs (members {res['member_protocol']}), {res['split']}, test, mean ± std over "
                  f"folds {folds}:", res["mean"], res["std"], out=out)
    for task in ("pair", "emotion", "cause"):
        p = res.get("ttest_p", {}).get(task)
        print(f"  {task:8s} F1 of the member runs " + ", ".join(f"{x:.4f}" for x in res["members_f1"][task])
              + f" (mean {res['members_mean_f1'][task]:.4f})"
              + (f"; ensemble against their mean: paired t-test over folds p = {p:.3g}" if p is not None else ""),
              file=out)
