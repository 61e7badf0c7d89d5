"""Privacy at matched utility (issue 25; Aerni, Zhang & Tramèr, CCS 2024): a heuristic "defence" (spiking neurons,
low-bit weights, an encoding, post-training quantization) is judged against a principled baseline (DP-SGD, or an
ordinary regularised net) *at the same test accuracy*, not against the undefended net it lost accuracy to.

A baseline is a *curve*: points (test accuracy, leakage) of one family of models (DP-SGD at several ε, weight decay
at several λ, early stopping at several epochs), each leakage with its standard error. The baseline's leakage at
the defence's accuracy is read off the curve by linear interpolation between the two points whose accuracies
bracket it; its SE is interpolated linearly too (w·se₁ + (1 − w)·se₂ ≥ the SE of the interpolated value whatever
the two points' correlation, so the comparison stays conservative). A defence whose accuracy lies outside the
curve's accuracy range is **not bracketed**: the curve is never extrapolated, and that comparison is not made.

The comparison "the defence leaks less than the baseline at its accuracy" is then judged by lib.claims.verdicts
(one set of rules for every claim): expect "lower", the noise of the two leakages treated as independent (their
`<metric>_se` columns; the defence and the curve are different models), so more noise can only weaken it. The
uncertainty of the defence's own accuracy is not propagated into the matched point (stated in every table); a
defence sitting on a steep stretch of the curve is flagged (`slope`) so a reader can see when that matters.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import verdicts as V


def curve(points: pd.DataFrame, acc: str = "test_acc", leak: str = "leak", se: str = "leak_se") -> pd.DataFrame:
    """A baseline's points sorted by accuracy, one row per accuracy (ties averaged), with columns acc, leak, se."""
    need = {acc, leak, se}
    if not need <= set(points.columns):
        raise ValueError(f"curve: the points need the columns {sorted(need)}, got {sorted(points.columns)}")
    p = points[[acc, leak, se]].rename(columns={acc: "acc", leak: "leak", se: "se"}).dropna()
    if len(p) < 2:
        raise ValueError(f"curve: at least two points with finite accuracy, leakage and SE are needed, got {len(p)}")
    return p.groupby("acc", as_index=False).mean().sort_values("acc").reset_index(drop=True)


def at_accuracy(c: pd.DataFrame, accuracy: float) -> dict:
    """The curve's leakage and SE at `accuracy` (linear between the bracketing points), the two points' accuracies,
    the local slope (leakage per accuracy point) and a status: "bracketed" or "not bracketed: outside [a, b]"."""
    a = c.acc.to_numpy()
    if not a[0] <= accuracy <= a[-1]:
        return {"leak": np.nan, "se": np.nan, "acc_lo": np.nan, "acc_hi": np.nan, "slope": np.nan,
                "status": f"not bracketed: accuracy {accuracy:.2f} outside the curve's [{a[0]:.2f}, {a[-1]:.2f}]"}
    j = int(min(max(np.searchsorted(a, accuracy), 1), len(a) - 1))
    lo, hi = c.iloc[j - 1], c.iloc[j]
    w = (hi.acc - accuracy) / (hi.acc - lo.acc)
    return {"leak": float(w * lo.leak + (1 - w) * hi.leak), "se": float(w * lo.se + (1 - w) * hi.se),
            "acc_lo": float(lo.acc), "acc_hi": float(hi.acc), "slope": float((hi.leak - lo.leak) / (hi.acc - lo.acc)),
            "status": "bracketed"}


def matched(defences: pd.DataFrame, baselines: dict, *, metric: str = "leak", acc: str = "test_acc",
            name: str = "setting", tag: str = "", family: str = "primary") -> tuple[pd.DataFrame, list, pd.DataFrame]:
    """Every defence (a row: `name`, `acc`, `metric`, `<metric>_se`) against every baseline curve ({label: points
    with the same columns}). Returns (the table the claims read: one row per defence and one per "<baseline> at
    <defence>'s accuracy", with the leakage and its SE; the Claims, one per defence, a "lower" comparison per
    bracketed baseline; the matching table: defence, baseline, accuracies, leakages, slope, status). `tag` is appended
    to every row name and comparison label (several cells of one defence in one table); `family` is the
    comparisons' (lib.claims.verdicts: primary or secondary)."""
    se_col = f"{metric}_se"
    rows, claims, info = [], [], []
    for d in defences.itertuples(index=False):
        d = d._asdict()
        me = f"{d[name]}{tag}"
        rows.append({"setting": me, "seed": 0, metric: d[metric], se_col: d[se_col]})
        comps = []
        for label, pts in baselines.items():
            at = at_accuracy(curve(pts, acc, metric, se_col), float(d[acc]))
            info.append({"defence": d[name], "baseline": label, "defence_acc": d[acc], "defence_" + metric: d[metric],
                         "baseline_" + metric: at["leak"], "baseline_se": at["se"], "acc_lo": at["acc_lo"],
                         "acc_hi": at["acc_hi"], "slope": at["slope"], "status": at["status"]})
            if at["status"] != "bracketed":
                continue
            ref = f"{label} at {d[name]}'s accuracy{tag}"
            rows.append({"setting": ref, "seed": 0, metric: at["leak"], se_col: at["se"]})
            comps.append(V.Comparison(f"{me} vs {ref}", {"setting": me}, {"setting": ref}, "lower",
                                      family=family))
        claims.append(V.Claim(f"{d[name]} at matched utility", "", f"{d[name]} leaks less than every baseline at its "
                              "accuracy", metric, tuple(comps), table="matched",
                              note="" if comps else "not tested: no baseline curve brackets its accuracy"))
    return pd.DataFrame(rows).drop_duplicates("setting"), claims, pd.DataFrame(info)


def judge(defences: pd.DataFrame, baselines: dict, **kw) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`matched` then lib.claims.verdicts.evaluate: (verdict per defence, every comparison, the matching table)."""
    table, claims, info = matched(defences, baselines, **kw)
    summary, details = V.evaluate({"matched": table}, claims)
    return summary, details, info


__all__ = ["curve", "at_accuracy", "matched", "judge"]
