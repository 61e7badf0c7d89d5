"""Comparisons and verdicts: one set of rules for every paper's claims.

A *claim* is data (`Claim`): an id, the paper, its wording, the metric, and the comparisons that test it. A
*comparison* (`Comparison`) picks two configurations by row filters `a` and `b` of a tidy results table and says
what the claim expects of a − b:

    lower / higher      a − b < 0 / > 0                                  (two-sided test, sign decides)
    equivalent          |a − b| < margin                                 (TOST, margin stated in advance)
    above / below       a − b > margin / a − b < margin                  (one-sided, e.g. non-inferiority)

Each comparison is paired on seed (or `pair_on`): d_i = a_i − b_i, mean d̄ over n pairs. Two sources of noise:

    seeds       se_seed  = sd(d)/√n                                       (t with n − 1 df)
    test set    se_floor = √(mean SE_a² + mean SE_b²)/√n                  (normal)
                SE of an AUC: Hanley & McNeil from the attack test set (column auc_se_hanley);
                SE of an accuracy p on N examples: √(p̃(1 − p̃)/N), p̃ = (pN + 1)/(N + 2)
                (treated as independent: conservative, both are usually scored on the same examples)

The comparison uses se = max(se_seed, se_floor) and that source's distribution; so a difference counts only
when it exceeds both the spread over seeds and what the finite test set can resolve (three seeds that each
differ by one Iris example give sd = 0, but se_floor ≈ 3.8 points). Constant differences get no shortcut: with
se = 0 (a metric with no test-set floor and identical per-seed values) the p-value is undefined unless the
metric is declared exact (EXACT_METRICS: deterministic measurements such as bytes allocated); for such a metric
an exactly zero difference contradicts a claim of "lower" or "higher".

Within a claim the p-values are Holm-adjusted (family = the claim's comparisons with data), and each verdict says
how many comparisons point the opposite way. With fewer than 2 pairs no test is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
EXPECTS = ("lower", "higher", "equivalent", "above", "below")
# metrics measured without noise (the same computation gives the same number): a constant difference is real
EXACT_METRICS = {"step_alloc_mb"}

SUPPORTED, CONTRADICTED = "supported", "contradicted"


@dataclass(frozen=True)
class Comparison:
    """a − b of the claim's metric, rows chosen by the filters `a` and `b` ({column: value}; "max"/"min" pick the
    largest/smallest value of that column among the matching rows). b = None: a one-sample test of a itself
    (e.g. a transfer drop against a margin)."""
    label: str
    a: dict
    b: dict | None
    expect: str
    margin: float | None = None

    def __post_init__(self):
        if self.expect not in EXPECTS:
            raise ValueError(f"Comparison {self.label!r}: expect must be one of {EXPECTS}, got {self.expect!r}")
        if (self.expect in ("equivalent", "above", "below")) != (self.margin is not None):
            raise ValueError(f"Comparison {self.label!r}: a margin is required for equivalent/above/below and "
                             "only for those")
        if self.expect == "equivalent" and not self.margin > 0:
            raise ValueError(f"Comparison {self.label!r}: an equivalence margin must be > 0, got {self.margin}")

    def expected_text(self) -> str:
        if self.expect in ("lower", "higher"):
            return "a < b" if self.expect == "lower" else "a > b"
        return {"equivalent": f"|a − b| < {self.margin:g}", "above": f"a − b > {self.margin:g}",
                "below": f"a − b < {self.margin:g}"}[self.expect]


@dataclass(frozen=True)
class Claim:
    """One quantitative claim of a paper and the comparisons that test it."""
    id: str
    paper: str
    text: str
    metric: str
    comparisons: tuple = field(default_factory=tuple)
    pair_on: tuple = ("seed",)
    source: str = ""          # the table/figure of the paper that states it
    shown_in: str = ""        # our notebook / figure that shows it
    table: str = "results"    # which results table of the stage holds the metric (evaluate() takes several)
    note: str = ""            # a fixed verdict when the claim cannot be tested here (e.g. "no GPU")

    def __post_init__(self):
        object.__setattr__(self, "comparisons", tuple(self.comparisons))


# ----------------------------------------------------------------------------- one comparison

def _select(df: pd.DataFrame, where: dict) -> pd.DataFrame:
    m = np.ones(len(df), bool)
    for k, v in where.items():
        if isinstance(v, str) and v in ("max", "min"):
            continue
        if k not in df.columns:
            if v is None:
                continue
            return df.iloc[0:0]
        m &= (df[k].isna().to_numpy() if v is None else (df[k] == v).to_numpy())
    for k, v in where.items():
        if isinstance(v, str) and v in ("max", "min") and m.any():
            ext = df.loc[m, k].max() if v == "max" else df.loc[m, k].min()
            m &= (df[k] == ext).to_numpy()
    return df[m]


def accuracy_se(acc_percent, n) -> np.ndarray:
    """Binomial SE (in points) of accuracies given in % on n examples, with p̃ = (pN + 1)/(N + 2)."""
    acc, n = np.asarray(acc_percent, float) / 100.0, np.asarray(n, float)
    pt = (acc * n + 1) / (n + 2)
    return 100.0 * np.sqrt(pt * (1 - pt) / n)


def test_set_se(df: pd.DataFrame, metric: str) -> pd.Series | None:
    """Per-row standard error of `metric` due to the finite test set, or None when it has none we know of:
    a column `<metric>_se`, Hanley SEs for AUCs, binomial SEs for accuracies (n from n_eval / n_members)."""
    if f"{metric}_se" in df.columns:
        return df[f"{metric}_se"].astype(float)
    if metric in ("auc", "svm_auc") and "auc_se_hanley" in df.columns:
        return df["auc_se_hanley"].astype(float)
    if metric.endswith("auc") and f"{metric}_se_hanley" in df.columns:
        return df[f"{metric}_se_hanley"].astype(float)
    for n_col in (f"n_{metric}", "n_eval"):
        if metric.endswith("test_acc") and n_col in df.columns:
            return pd.Series(accuracy_se(df[metric], df[n_col]), index=df.index)
    if metric in ("train_acc",) and "n_members" in df.columns:
        return pd.Series(accuracy_se(df[metric], df["n_members"]), index=df.index)
    return None


def paired(df: pd.DataFrame, metric: str, a: dict, b: dict, pair_on=("seed",)) -> dict:
    """The paired statistics of a − b (see the module docstring): means, d̄, se (and which noise set it), the
    95% interval, n pairs. NaN-valued pairs are dropped."""
    nan = float("nan")
    ra = _select(df, a)
    one_sample = b is None
    rb = ra.assign(**{metric: 0.0}).drop(columns=[f"{metric}_se"], errors="ignore") if one_sample and metric in df \
        else _select(df, b or {})
    empty = {"a": nan, "b": nan, "diff": nan, "se": nan, "se_seed": nan, "se_floor": nan, "noise": "",
             "ci_low": nan, "ci_high": nan, "df": nan, "n": 0}
    if not len(ra) or not len(rb) or metric not in df.columns:
        return empty
    keys = list(pair_on)
    sa, sb = ra.groupby(keys)[metric].mean(), rb.groupby(keys)[metric].mean()
    common = sa.index.intersection(sb.index)
    va, vb = sa[common].astype(float), sb[common].astype(float)
    ok = ~(va.isna().to_numpy() | vb.isna().to_numpy())
    va, vb = va[ok], vb[ok]
    n = len(va)
    if n == 0:
        return empty
    d = va.to_numpy() - vb.to_numpy()
    mean = float(d.mean())
    se_seed = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else nan
    if n > 1 and se_seed <= 1e-9 * max(1.0, abs(mean)):
        se_seed = 0.0                     # identical differences up to float rounding: no spread over seeds
    se_floor = 0.0
    sea, seb = test_set_se(ra, metric), test_set_se(rb, metric)
    if sea is not None and (seb is not None or one_sample):
        ea = ra.assign(_se=sea).groupby(keys)["_se"].mean()[va.index]
        eb = 0.0 if one_sample else rb.assign(_se=seb).groupby(keys)["_se"].mean()[vb.index].to_numpy()
        se_floor = float(np.sqrt(np.mean(ea.to_numpy() ** 2) + np.mean(np.square(eb))) / np.sqrt(n))
    if n > 1 and se_seed >= se_floor:
        se, dof, noise = se_seed, n - 1, "seeds"
    else:
        se, dof, noise = se_floor, np.inf, "test set"
    q = stats.t.ppf(0.975, dof) if np.isfinite(dof) else stats.norm.ppf(0.975)
    half = q * se
    return {"a": float(va.mean()), "b": float(vb.mean()), "diff": mean, "se": se, "se_seed": se_seed,
            "se_floor": se_floor, "noise": noise, "ci_low": mean - half, "ci_high": mean + half, "df": dof, "n": n}


def _cdf(x: float, dof: float) -> float:
    return float(stats.t.cdf(x, dof) if np.isfinite(dof) else stats.norm.cdf(x))


def p_values(r: dict, c: Comparison, metric: str) -> tuple[float, float]:
    """(p for the claim, p for its contradiction), unadjusted. For lower/higher both come from the two-sided test
    of d = 0 (the sign of d̄ says which one is small); for equivalent the claim's p is TOST's and the
    contradiction's is the two-sided test of d = 0; for above/below each is one-sided against the margin."""
    nan = float("nan")
    d, se, dof = r["diff"], r["se"], r["df"]
    if r["n"] < 2 or np.isnan(d):
        return nan, nan
    if not se > 0:
        if metric not in EXACT_METRICS:
            return nan, nan
        if d == 0 and c.expect in ("lower", "higher"):
            return 1.0, 0.0                     # an exact metric with no difference at all contradicts "lower/higher"
        se = 1e-12 * max(1.0, abs(d))           # an exact metric: the difference is what it is
    two = 2 * (1 - _cdf(abs(d) / se, dof))
    if c.expect in ("lower", "higher"):
        right = (d < 0) == (c.expect == "lower") and d != 0
        return (two, 1.0) if right else (1.0, two if d != 0 else 1.0)
    m = c.margin
    if c.expect == "equivalent":
        p_lo = 1 - _cdf((d + m) / se, dof)      # H0: d ≤ −m
        p_hi = _cdf((d - m) / se, dof)          # H0: d ≥ +m
        return max(p_lo, p_hi), two
    if c.expect == "above":                     # claim d > m
        return 1 - _cdf((d - m) / se, dof), _cdf((d - m) / se, dof)
    return _cdf((d - m) / se, dof), 1 - _cdf((d - m) / se, dof)   # below: claim d < m


def holm(p) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count in the family)."""
    p = np.asarray(p, float)
    out = np.full(len(p), np.nan)
    idx = np.where(~np.isnan(p))[0]
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _direction_ok(r: dict, c: Comparison) -> bool | None:
    """Does the point estimate lean the claim's way? None when it cannot say (no data, or d̄ on the margin)."""
    d = r["diff"]
    if r["n"] == 0 or np.isnan(d):
        return None
    if c.expect == "lower":
        return d < 0 if d != 0 else None
    if c.expect == "higher":
        return d > 0 if d != 0 else None
    if c.expect == "equivalent":
        return abs(d) < c.margin
    if c.expect == "above":
        return d > c.margin
    return d < c.margin


def comparison_verdict(r: dict, c: Comparison, p_claim: float, p_contra: float) -> str:
    """The verdict of one comparison from its (Holm-adjusted) p-values."""
    if r["n"] == 0 or np.isnan(r["diff"]):
        return "no data"
    if r["n"] < 2:
        return "1 seed: no test"
    if np.isnan(p_claim):
        return "not resolved: no measurable noise (identical differences, no test-set floor)"
    if p_claim < ALPHA:
        return SUPPORTED
    if p_contra < ALPHA:
        return CONTRADICTED
    lean = _direction_ok(r, c)
    if c.expect == "equivalent":
        return "not resolved: interval wider than the equivalence margin"
    if lean is None:
        return "not resolved: no difference"
    return f"not resolved: {'same' if lean else 'opposite'} direction, within noise"


def compare_claim(df: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """One row per comparison of `claim`: means, a − b with its 95% interval and noise source, unadjusted and
    Holm-adjusted p for the claim, and the comparison's verdict."""
    rows = []
    for c in claim.comparisons:
        r = paired(df, claim.metric, c.a, c.b, claim.pair_on)
        pc, px = p_values(r, c, claim.metric)
        rows.append({"claim": claim.id, "paper": claim.paper, "comparison": c.label, "metric": claim.metric,
                     "expected": c.expected_text(), "a": r["a"], "b": r["b"], "a − b": r["diff"],
                     "relative %": 100 * r["diff"] / r["b"] if r["n"] and r["b"] else float("nan"),
                     "ci_low": r["ci_low"], "ci_high": r["ci_high"], "se": r["se"], "se seeds": r["se_seed"],
                     "se test set": r["se_floor"], "noise": r["noise"], "pairs": r["n"], "p": pc, "_pc": pc,
                     "_px": px, "_lean": _direction_ok(r, c), "_r": r, "_c": c})
    if not rows:
        return pd.DataFrame(columns=["claim", "comparison", "verdict"])
    t = pd.DataFrame(rows)
    t["p (Holm)"] = holm(t["_pc"].to_numpy(float))
    pxh = holm(t["_px"].to_numpy(float))
    t["verdict"] = [comparison_verdict(r, c, ph, xh) for r, c, ph, xh in zip(t["_r"], t["_c"], t["p (Holm)"], pxh)]
    t["leans opposite"] = [lean is False for lean in t["_lean"]]
    return t.drop(columns=["_pc", "_px", "_lean", "_r", "_c"])


def claim_verdict(table: pd.DataFrame, note: str = "") -> str:
    """All comparisons of one claim → one verdict, with how many comparisons point the opposite way."""
    if note:
        return note
    v = table["verdict"].astype(str) if len(table) else pd.Series([], dtype=str)
    n = len(v)
    if n == 0 or (v == "no data").all():
        return "not tested at this scale"
    if (v.eq("no data") | v.str.startswith("1 seed")).all():
        return "not testable: one seed per configuration"
    tested = v[~v.eq("no data") & ~v.str.startswith("1 seed")]
    k = len(tested)
    sup, con = int((tested == SUPPORTED).sum()), int((tested == CONTRADICTED).sum())
    opp = int(table.loc[tested.index, "leans opposite"].sum()) if "leans opposite" in table else 0
    tail = f"; {opp}/{k} point the opposite way" if opp else ""
    if sup == k:
        out = SUPPORTED
    elif con == k:
        out = CONTRADICTED
    elif sup and not con:
        out = f"partly supported ({sup}/{k} beyond noise, none contradicted)"
    elif con and not sup:
        out = f"partly contradicted ({con}/{k} beyond noise, none supported)"
    elif sup and con:
        out = f"mixed ({sup}/{k} supported, {con}/{k} contradicted)"
    elif tested.str.contains("equivalence margin").all():
        out = "not resolved: noise wider than the equivalence margin"
    else:
        out = "not resolved: within noise"
    untested = n - k
    return out + tail + (f"; {untested} comparison(s) without data" if untested else "")


def evaluate(tables, claims) -> tuple[pd.DataFrame, pd.DataFrame]:
    """claims → (summary: one row per claim with its verdict; details: every comparison). `tables` is one results
    table or {name: table} read by each claim's `table`. A claim whose table or metric is absent is not tested."""
    summary, details = [], []
    for cl in claims:
        df = tables.get(cl.table) if isinstance(tables, dict) else tables
        df = df if df is not None else pd.DataFrame()
        t = compare_claim(df, cl) if cl.comparisons and not cl.note else pd.DataFrame(columns=["verdict"])
        if len(t):
            details.append(t)
        summary.append({"claim": cl.id, "paper": cl.paper, "paper says": cl.text, "metric": cl.metric,
                        "comparisons": len(t), "our verdict": claim_verdict(t, cl.note),
                        "shown in": cl.shown_in})
    s = pd.DataFrame(summary).set_index("claim") if summary else pd.DataFrame()
    d = pd.concat(details, ignore_index=True) if details else pd.DataFrame()
    return s, d


__all__ = ["ALPHA", "EXPECTS", "EXACT_METRICS", "Comparison", "Claim", "paired", "p_values", "holm",
           "comparison_verdict", "compare_claim", "claim_verdict", "evaluate", "accuracy_se", "test_set_se"]
