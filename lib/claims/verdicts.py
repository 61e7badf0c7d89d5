"""Comparisons and verdicts: one set of rules for every paper's claims.

A *claim* is data (`Claim`): an id, the paper, its wording, the metric, and the comparisons that test it. A
*comparison* (`Comparison`) picks two configurations by row filters `a` and `b` of a tidy results table and says
what the claim expects of d = a − b:

    lower / higher      d < 0 / d > 0
    equivalent          |d − centre| < margin                 (TOST; margin stated in advance, centre 0 by default)
    above / below       d > margin / d < margin               (e.g. non-inferiority: d > −margin)

**One α.** α = 0.05, two-sided: every verdict reads off the 95% interval of d. Supported = the interval lies where
the claim says (below 0; inside ±margin; above the margin); contradicted = it lies entirely on the other side
(above 0; entirely beyond +margin or −margin, the mirror of TOST; below the margin). Each one-sided test therefore
runs at α/2 = 0.025, and every p-value printed is its two-sided equivalent (2 × one-sided, capped at 1), compared
with α = 0.05 after Holm's adjustment.

**Pairs** (lib.claims.paired). Each comparison is paired on seed (or `pair_on`): d_i = a_i − b_i over n pairs,
mean d̄. Two sources of noise, each tested with its own distribution:

    seeds       se_seed  = sd(d)/√n,                     t with n − 1 df      (training variance + test-set noise)
    test set    se_floor = √(mean v_i)/√n,                normal               (what the finite test set can resolve)

    v_i, per pair, is the variance of d_i over the examples, **paired on the same examples** where the stage stored
    per-example outcomes (`Examples`): McNemar's for accuracies (var(c_a − c_b)/N), DeLong's paired variance for
    AUCs on the same members / non-members, a paired stratified bootstrap (members and non-members resampled, the
    threshold re-estimated) for TPR at a fixed FPR. Without per-example outcomes it falls back to treating a and b
    as independent (SE_a² + SE_b²: Hanley for AUCs, binomial for accuracies, a `<metric>_se` column otherwise),
    which is conservative when both are scored on the same examples.

A difference counts only when it beats **both** sources (an intersection–union test: p = the larger of the two
p-values; the 95% interval = d̄ ± max(t_{n−1}·se_seed, z·se_floor)). Raising either source of noise can therefore
only raise p and widen the interval: more noise never makes a verdict stronger. With one training seed (n = 1)
only the test-set test exists: the verdict is made on it and says "one training seed: test-set noise only"
(training variance is not measured). For accuracies with one seed the exact McNemar test must agree as well
(Wald is anti-conservative at few discordant examples). With no test-set noise known and n = 1: no test.

Constant differences get no shortcut: with zero spread over seeds and no test-set floor the p-value is undefined
unless the metric is declared exact (EXACT_METRICS: deterministic measurements such as bytes allocated); for such a
metric an exactly zero difference contradicts a claim of "lower" or "higher".

**Families.** Within a claim the p-values are Holm-adjusted per family (`Comparison.family`): the claim's verdict
rests on its "primary" comparisons (declared before looking; every comparison is primary unless a claim says
otherwise), the other cells form one "secondary" family reported beside it. Each verdict says how many comparisons
point the opposite way, and on how many of its planned comparisons it rests when some had no data.

A claim that is true by construction (`Claim.structural`, e.g. max pooling passes no gradient to the non-maximal
inputs) is labelled "structural"; its comparisons judge the paper's stated magnitude instead. A claim measured in a
setting that cannot show what the paper claims (`Claim.scope`) is labelled "scoped" with that setting.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .paired import ALPHA, LEVEL, Examples, Outcome, _select, accuracy_se, paired, test_set_se  # noqa: F401

EXPECTS = ("lower", "higher", "equivalent", "above", "below")
FAMILIES = ("primary", "secondary")
# metrics measured without noise (the same computation gives the same number): a constant difference is real
EXACT_METRICS = {"step_alloc_mb"}
ONE_SEED = "one training seed: test-set noise only"

SUPPORTED, CONTRADICTED = "supported", "contradicted"
# the class of a claim's verdict (the `verdict class` column beside `our verdict`): what notebook 99 counts
CLASSES = ("supported", "partly supported", "mixed", "partly contradicted", "contradicted", "not resolved",
           "scoped", "structural", "not tested")
# How a reading groups the classes (notebook 99's per-paper reading, every stage's metrics.json holds / fails):
# the claim holds, fails, is open, or is set aside (a scoped or structural reading, not a test of the claim)
CLASS_GROUPS = {"holds": ("supported", "partly supported"), "fails": ("contradicted", "partly contradicted", "mixed"),
                "open": ("not resolved", "not tested"), "aside": ("scoped", "structural")}


@dataclass(frozen=True)
class Comparison:
    """a − b of the claim's metric (or `metric`, when this comparison reads another column), rows chosen by the
    filters `a` and `b` ({column: value}; "max"/"min" pick the largest/smallest value of that column among the
    matching rows). b = None: a one-sample test of a itself (e.g. a transfer drop against a margin). `centre`: the
    value an equivalence is judged around (0: a ≈ b; a paper's stated difference, for a structural claim).
    `family`: "primary" (the claim's verdict) or "secondary" (reported, corrected as one family)."""
    label: str
    a: dict
    b: dict | None
    expect: str
    margin: float | None = None
    centre: float = 0.0
    metric: str | None = None
    family: str = "primary"

    def __post_init__(self):
        if self.expect not in EXPECTS:
            raise ValueError(f"Comparison {self.label!r}: expect must be one of {EXPECTS}, got {self.expect!r}")
        if (self.expect in ("equivalent", "above", "below")) != (self.margin is not None):
            raise ValueError(f"Comparison {self.label!r}: a margin is required for equivalent/above/below and "
                             "only for those")
        if self.expect == "equivalent" and not self.margin > 0:
            raise ValueError(f"Comparison {self.label!r}: an equivalence margin must be > 0, got {self.margin}")
        if self.centre and self.expect != "equivalent":
            raise ValueError(f"Comparison {self.label!r}: a centre other than 0 is for equivalence only")
        if self.family not in FAMILIES:
            raise ValueError(f"Comparison {self.label!r}: family must be one of {FAMILIES}, got {self.family!r}")

    def expected_text(self) -> str:
        if self.expect in ("lower", "higher"):
            return "a < b" if self.expect == "lower" else "a > b"
        if self.expect == "equivalent":
            return f"|a − b| < {self.margin:g}" if not self.centre else \
                f"|a − b − ({self.centre:g})| < {self.margin:g}"
        return {"above": f"a − b > {self.margin:g}", "below": f"a − b < {self.margin:g}"}[self.expect]


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
    note_class: str = "not tested"   # the class of `note` (CLASSES), e.g. "supported" for a verdict made elsewhere
    structural: str = ""      # why the claim is true by construction (its comparisons judge the stated magnitude)
    scope: str = ""           # the setting that bounds what our test can show (e.g. "CPU allocator, dense tensors")
    equal_text: str = ""      # what a = b in every pair means (e.g. "no zeros in either")

    def __post_init__(self):
        object.__setattr__(self, "comparisons", tuple(self.comparisons))
        if self.note_class not in CLASSES:
            raise ValueError(f"Claim {self.id!r}: note_class must be one of {CLASSES}, got {self.note_class!r}")


def _one_sided(z: float, dof: float) -> tuple[float, float]:
    """(P(T ≥ z), P(T ≤ z)) for T ~ t(dof) (normal for dof = ∞)."""
    dist = stats.t(dof) if np.isfinite(dof) else stats.norm
    return float(dist.sf(z)), float(dist.cdf(z))


def _p_pair(d: float, se: float, dof: float, c: Comparison) -> tuple[float, float]:
    """(p for the claim, p for its contradiction) from one noise source, each the two-sided equivalent
    (2 × one-sided, capped at 1)."""
    if c.expect in ("lower", "higher"):
        above, below = _one_sided(d / se, dof)      # P(T ≥ d/se) small ⇔ d > 0; P(T ≤ d/se) small ⇔ d < 0
        pc, px = (below, above) if c.expect == "lower" else (above, below)
    elif c.expect == "equivalent":
        lo = _one_sided((d - c.centre + c.margin) / se, dof)[0]   # H0: d − centre ≤ −m
        hi = _one_sided((d - c.centre - c.margin) / se, dof)[1]   # H0: d − centre ≥ +m
        beyond_hi = _one_sided((d - c.centre - c.margin) / se, dof)[0]   # H0: d − centre ≤ +m
        beyond_lo = _one_sided((d - c.centre + c.margin) / se, dof)[1]   # H0: d − centre ≥ −m
        pc, px = max(lo, hi), min(beyond_hi, beyond_lo)
    else:
        above, below = _one_sided((d - c.margin) / se, dof)
        pc, px = (above, below) if c.expect == "above" else (below, above)
    return min(1.0, 2 * pc), min(1.0, 2 * px)


def p_values(r: dict, c: Comparison, metric: str) -> tuple[float, float]:
    """(p for the claim, p for its contradiction), unadjusted, two-sided equivalents (compare with ALPHA). The
    larger of the seed test's (t, n − 1) and the test-set test's (normal) p-values: both must reject."""
    d = r["diff"]
    if r["n"] == 0 or np.isnan(d):
        return np.nan, np.nan
    sources = []
    if r["n"] > 1 and r["se_seed"] > 0:
        sources.append((r["se_seed"], r["n"] - 1))
    if r["se_floor"] > 0:
        sources.append((r["se_floor"], np.inf))
    if not sources:
        if r["n"] < 2 or metric not in EXACT_METRICS:
            return np.nan, np.nan
        if d == 0 and c.expect in ("lower", "higher"):
            return 1.0, 0.0                     # an exact metric with no difference at all contradicts "lower/higher"
        sources.append((1e-12 * max(1.0, abs(d)), np.inf))   # an exact metric: the difference is what it is
    ps = [_p_pair(d, se, dof, c) for se, dof in sources]
    pc, px = max(p[0] for p in ps), max(p[1] for p in ps)
    mc = r.get("mcnemar_p", np.nan)
    if np.isfinite(mc) and c.expect in ("lower", "higher"):   # one seed, accuracy: the exact test must agree
        pc, px = (max(pc, mc), px) if pc <= px else (pc, max(px, mc))
    return pc, px


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
        return abs(d - c.centre) < c.margin
    if c.expect == "above":
        return d > c.margin
    return d < c.margin


def comparison_verdict(r: dict, c: Comparison, p_claim: float, p_contra: float, equal_text: str = "") -> str:
    """The verdict of one comparison from its (Holm-adjusted) p-values."""
    if r["n"] == 0 or np.isnan(r["diff"]):
        return "no data"
    if np.isnan(p_claim):
        if r.get("equal") is True:
            return "not resolved: " + (equal_text or f"a = b = {r['equal_value']:g} in every pair")
        if r["n"] < 2:
            return "1 seed: no test"
        return "not resolved: no measurable noise (identical differences, no test-set floor)"
    if p_claim < ALPHA:
        return SUPPORTED
    if p_contra < ALPHA:
        return CONTRADICTED
    if r.get("equal") is True and c.expect in ("lower", "higher"):
        return "not resolved: " + (equal_text or f"a = b = {r['equal_value']:g} in every pair")
    lean = _direction_ok(r, c)
    if c.expect == "equivalent":
        return "not resolved: interval wider than the equivalence margin"
    if lean is None:
        return "not resolved: no difference"
    return f"not resolved: {'same' if lean else 'opposite'} direction, within noise"


def compare_claim(df: pd.DataFrame, claim: Claim, examples: Examples | None = None) -> pd.DataFrame:
    """One row per comparison of `claim`: means, a − b with its 95% interval, the noise that sets it and how the
    test-set floor was computed, unadjusted and Holm-adjusted p (per family) for the claim, and the verdict."""
    rows = []
    for c in claim.comparisons:
        metric = c.metric or claim.metric
        r = paired(df, metric, c.a, c.b, claim.pair_on, examples)
        pc, px = p_values(r, c, metric)
        rows.append({"claim": claim.id, "paper": claim.paper, "comparison": c.label, "metric": metric,
                     "family": c.family, "expected": c.expected_text(), "a": r["a"], "b": r["b"], "a − b": r["diff"],
                     "relative %": 100 * r["diff"] / r["b"] if r["n"] and r["b"] else np.nan,
                     "ci_low": r["ci_low"], "ci_high": r["ci_high"], "se": r["se"], "se seeds": r["se_seed"],
                     "se test set": r["se_floor"], "noise": r["noise"], "test-set floor": r["floor"],
                     "pairs": r["n"], "examples": r["n_examples"],
                     "noise covers": ("" if r["n"] == 0 else ONE_SEED if r["n"] == 1 else
                                      "training seeds and test set" if r["se_floor"] > 0 else "training seeds"),
                     "p": pc, "_pc": pc, "_px": px, "_lean": _direction_ok(r, c), "_r": r, "_c": c})
    if not rows:
        return pd.DataFrame(columns=["claim", "comparison", "verdict"])
    t = pd.DataFrame(rows)
    t["p (Holm)"] = np.nan
    pxh = np.full(len(t), np.nan)
    for fam in FAMILIES:
        m = (t.family == fam).to_numpy()
        if m.any():
            t.loc[m, "p (Holm)"] = holm(t.loc[m, "_pc"].to_numpy(float))
            pxh[m] = holm(t.loc[m, "_px"].to_numpy(float))
    t["verdict"] = [comparison_verdict(r, c, ph, xh, claim.equal_text)
                    for r, c, ph, xh in zip(t["_r"], t["_c"], t["p (Holm)"], pxh)]
    t["leans opposite"] = [lean is False for lean in t["_lean"]]
    return t.drop(columns=["_pc", "_px", "_lean", "_r", "_c"])


def tally(table: pd.DataFrame) -> tuple[str, str]:
    """The verdict of a set of comparisons (one family of one claim, or one cell of a grid): (text, class), the
    class one of CLASSES ("supported on k of n planned comparisons", some without data, is "partly supported")."""
    v = table["verdict"].astype(str) if len(table) else pd.Series([], dtype=str)
    n = len(v)
    if n == 0 or (v == "no data").all():
        return "not tested at this scale", "not tested"
    if (v.eq("no data") | v.str.startswith("1 seed")).all():
        return "not testable: one seed per configuration", "not tested"
    tested = v[~v.eq("no data") & ~v.str.startswith("1 seed")]
    k = len(tested)
    sup, con = int((tested == SUPPORTED).sum()), int((tested == CONTRADICTED).sum())
    opp = int(table.loc[tested.index, "leans opposite"].sum()) if "leans opposite" in table else 0
    tail = f"; {opp}/{k} point the opposite way" if opp else ""
    if sup == k:
        out, cls = (SUPPORTED, SUPPORTED) if k == n else (f"supported on {k} of {n} planned comparisons",
                                                          "partly supported")
    elif con == k:
        out, cls = (CONTRADICTED, CONTRADICTED) if k == n else (f"contradicted on {k} of {n} planned comparisons",
                                                                "partly contradicted")
    elif sup and not con:
        out, cls = f"partly supported ({sup}/{k} beyond noise, none contradicted)", "partly supported"
    elif con and not sup:
        out, cls = f"partly contradicted ({con}/{k} beyond noise, none supported)", "partly contradicted"
    elif sup and con:
        out, cls = f"mixed ({sup}/{k} supported, {con}/{k} contradicted)", "mixed"
    elif tested.str.contains("equivalence margin").all():
        out, cls = "not resolved: noise wider than the equivalence margin", "not resolved"
    elif tested.nunique() == 1 and not tested.iloc[0].endswith("within noise"):
        # one reason for all (e.g. "a = b = 0 in every pair", "no measurable noise"): a "not resolved: …" of
        # comparison_verdict (supported / contradicted / no data / one seed are caught above)
        out, cls = tested.iloc[0], "not resolved"
    else:
        out, cls = "not resolved: within noise", "not resolved"
    untested = n - k
    said = (sup == k or con == k) and k < n     # "supported / contradicted on k of n planned comparisons"
    planned = "" if said or not untested else f"; {untested} of {n} planned comparison(s) without data"
    one_seed = "pairs" in table and (table.loc[tested.index, "pairs"] == 1).any()
    return out + tail + planned + (f"; {ONE_SEED}" if one_seed else ""), cls


def judge(table: pd.DataFrame, note: str = "", claim: Claim | None = None) -> tuple[str, str]:
    """All primary comparisons of one claim → (verdict, verdict class): the verdict says how many comparisons point
    the opposite way, on how many of the planned comparisons it rests, and whether training variance was measured.
    A structural claim is labelled so (its comparisons judge the stated magnitude; class "structural"); a scoped
    claim carries its scope (class "scoped"): neither counts as a finding for or against the paper. A `note` is a
    fixed verdict, of class `claim.note_class` ("not tested" without a claim)."""
    if note:
        return note, claim.note_class if claim is not None else "not tested"
    prim = table[table["family"] == "primary"] if "family" in table and len(table) else table
    out, cls = tally(prim)
    if claim is not None and claim.structural:
        out, cls = f"structural ({claim.structural}); the paper's magnitude: {out}", "structural"
    if claim is not None and claim.scope:
        out, cls = f"scoped ({claim.scope}): {out}", "scoped"
    return out, cls


def claim_verdict(table: pd.DataFrame, note: str = "", claim: Claim | None = None) -> str:
    """The text of `judge`: one claim's verdict."""
    return judge(table, note, claim)[0]


def secondary_verdict(table: pd.DataFrame) -> str:
    """The secondary family of a claim (Holm over all its cells), in one line; "" when it has none."""
    if "family" not in table or not (table["family"] == "secondary").any():
        return ""
    sec = table[table["family"] == "secondary"]
    v = sec["verdict"].astype(str)
    return (f"{int((v == SUPPORTED).sum())} supported, {int((v == CONTRADICTED).sum())} contradicted, "
            f"{int(v.str.startswith('not resolved').sum())} not resolved of {len(v)} secondary comparisons "
            "(Holm over all of them)")


def evaluate(tables, claims, examples=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """claims → (summary: one row per claim with its verdict and its `verdict class` (CLASSES); details: every
    comparison). `tables` is one results table or {name: table} read by each claim's `table`; `examples` likewise
    one Examples or {name: Examples} (the per-example outcomes behind that table). A claim whose table or metric is absent is not tested."""
    summary, details = [], []
    for cl in claims:
        df = tables.get(cl.table) if isinstance(tables, dict) else tables
        df = df if df is not None else pd.DataFrame()
        ex = examples.get(cl.table) if isinstance(examples, dict) else examples
        t = compare_claim(df, cl, ex) if cl.comparisons and not cl.note else pd.DataFrame(columns=["verdict"])
        if len(t):
            details.append(t)
        verdict, cls = judge(t, cl.note, cl)
        summary.append({"claim": cl.id, "paper": cl.paper, "paper says": cl.text, "metric": cl.metric,
                        "comparisons": len(t), "our verdict": verdict, "verdict class": cls,
                        "secondary": secondary_verdict(t) if len(t) else "", "shown in": cl.shown_in})
    s = pd.DataFrame(summary).set_index("claim") if summary else pd.DataFrame()
    d = pd.concat(details, ignore_index=True) if details else pd.DataFrame()
    return s, d


__all__ = ["ALPHA", "LEVEL", "EXPECTS", "FAMILIES", "EXACT_METRICS", "ONE_SEED", "CLASSES", "CLASS_GROUPS", "Comparison",
           "Claim", "Outcome", "Examples", "paired", "p_values", "holm", "comparison_verdict", "compare_claim", "tally", "judge",
           "claim_verdict",
           "secondary_verdict", "evaluate", "accuracy_se", "test_set_se"]
