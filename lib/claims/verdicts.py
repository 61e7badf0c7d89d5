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

**Pairs.** Each comparison is paired on seed (or `pair_on`): d_i = a_i − b_i over n pairs, mean d̄. Two sources of
noise, each tested with its own distribution:

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

from . import metrics as M

ALPHA = 0.05          # two-sided; each one-sided test at ALPHA / 2; verdicts read off the 95% interval
LEVEL = 1 - ALPHA
EXPECTS = ("lower", "higher", "equivalent", "above", "below")
FAMILIES = ("primary", "secondary")
# metrics measured without noise (the same computation gives the same number): a constant difference is real
EXACT_METRICS = {"step_alloc_mb"}
ONE_SEED = "one training seed: test-set noise only"

SUPPORTED, CONTRADICTED = "supported", "contradicted"


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
    structural: str = ""      # why the claim is true by construction (its comparisons judge the stated magnitude)
    scope: str = ""           # the setting that bounds what our test can show (e.g. "CPU allocator, dense tensors")
    equal_text: str = ""      # what a = b in every pair means (e.g. "no zeros in either")

    def __post_init__(self):
        object.__setattr__(self, "comparisons", tuple(self.comparisons))


# ----------------------------------------------------------------------------- per-example outcomes

@dataclass(frozen=True)
class Outcome:
    """How a metric column of a results table is computed from per-example outcomes: the rows of the examples
    table with this `measure`, and the statistic: "accuracy" (mean of `correct`, × `scale`), "auc" (of `score`
    vs `member`), "tpr" (TPR at FPR `fpr`, tie-aware; fpr None: each id's own, the examples' `fpr` column) or
    "log10_tpr"."""
    measure: str
    stat: str
    fpr: float | None = None
    scale: float = 1.0

    def __post_init__(self):
        if self.stat not in ("accuracy", "auc", "tpr", "log10_tpr"):
            raise ValueError(f"Outcome: stat must be accuracy, auc, tpr or log10_tpr, got {self.stat!r}")


class Examples:
    """Per-example outcomes of every evaluated model, for paired tests on the same examples.

    `frame`: one row per (id, measure, example) with `correct` (0/1, for accuracies) or `score` and `member`
    (attack scores, a higher score = more likely a member). `id` links a results row to its examples: the results
    table has a column `id_column` (default "examples") with the id of the row's outcomes. `outcomes`: metric
    column → Outcome. `n_boot`, `seed`: the paired bootstrap of TPRs."""

    def __init__(self, frame: pd.DataFrame, outcomes: dict, id_column: str = "examples", n_boot: int = 200,
                 seed: int = 0):
        need = {"id", "measure", "example"}
        if not need <= set(frame.columns):
            raise ValueError(f"Examples: the frame needs the columns {sorted(need)}, has {list(frame.columns)}")
        self.outcomes, self.id_column, self.n_boot, self.seed = dict(outcomes), id_column, int(n_boot), int(seed)
        self._by = {}
        for (i, m), g in frame.groupby(["id", "measure"], sort=False):
            g = g.sort_values("example")
            self._by[(str(i), str(m))] = {c: g[c].to_numpy() for c in ("example", "correct", "score", "member", "fpr")
                                          if c in g.columns}

    def has(self, metric: str) -> bool:
        return metric in self.outcomes

    def get(self, id_, measure: str) -> dict | None:
        return self._by.get((str(id_), str(measure)))

    def variance(self, metric: str, ids_a, ids_b) -> tuple[float, int]:
        """Variance of metric(a) − metric(b) over the examples (b empty: of metric(a) alone), averaged over every
        combination of a's and b's ids in the pair (runs averaged within a pair are treated as perfectly
        correlated: conservative), and the number of shared examples. NaN when an id has no outcomes."""
        o = self.outcomes[metric]
        vs, ns = [], []
        for ia in ids_a:
            for ib in (ids_b if len(ids_b) else [None]):
                v, n = self._pair_var(o, ia, ib)
                vs.append(v)
                ns.append(n)
        if not vs or np.any(np.isnan(vs)):
            return float("nan"), 0
        return float(np.mean(vs)), int(min(ns))

    def _pair_var(self, o: Outcome, ia, ib) -> tuple[float, int]:
        ea = self.get(ia, o.measure)
        eb = None if ib is None else self.get(ib, o.measure)
        if ea is None or (ib is not None and eb is None):
            return float("nan"), 0
        if eb is not None:
            common, xa, xb = np.intersect1d(ea["example"], eb["example"], return_indices=True)
            if not len(common):
                return float("nan"), 0
        else:
            xa = np.arange(len(ea["example"]))
            xb = None
        n = len(xa)
        if o.stat == "accuracy":
            ca = ea["correct"][xa]
            v = M.paired_accuracy_var(ca, None if eb is None else eb["correct"][xb])
            return v * o.scale ** 2, n
        y = ea["member"][xa].astype(int)
        if eb is not None and not np.array_equal(y, eb["member"][xb].astype(int)):
            raise ValueError(f"Examples: ids {ia!r} and {ib!r} disagree on which examples are members")
        if y.min() == y.max():
            return float("nan"), n
        sa = ea["score"][xa].astype(float)
        sb = None if eb is None else eb["score"][xb].astype(float)
        ok = np.isfinite(sa) & (np.isfinite(sb) if sb is not None else True)
        y, sa, sb = y[ok], sa[ok], (sb[ok] if sb is not None else None)
        if o.stat == "auc":
            v = M.delong_var(y, sa) if sb is None else M.delong_paired_var(y, sa, sb)
            return v * o.scale ** 2, n
        fpr = o.fpr if o.fpr is not None else float(ea["fpr"][0]) if "fpr" in ea else None
        if fpr is None:
            raise ValueError(f"Examples: the TPR of {ia!r} needs an FPR (Outcome.fpr or an `fpr` column)")
        draws = M.bootstrap_tpr(y, sa, [fpr], n_boot=self.n_boot, seed=self.seed, scores_b=sb,
                                log10=o.stat == "log10_tpr")
        return float(np.nanvar(draws, ddof=1)) * o.scale ** 2, n


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


_EMPTY = {"a": np.nan, "b": np.nan, "diff": np.nan, "se": np.nan, "se_seed": np.nan, "se_floor": np.nan,
          "noise": "", "floor": "", "ci_low": np.nan, "ci_high": np.nan, "df": np.nan, "n": 0, "n_examples": 0,
          "mcnemar_p": np.nan, "equal": np.nan}


def paired(df: pd.DataFrame, metric: str, a: dict, b: dict | None, pair_on=("seed",),
           examples: Examples | None = None) -> dict:
    """The paired statistics of a − b (see the module docstring): means, d̄, se_seed and se_floor, the noise that
    sets the 95% interval, how the floor was computed ("paired examples" / "independent" / ""), n pairs, the
    number of shared examples, and (accuracy, one pair) the exact McNemar p. NaN-valued pairs are dropped."""
    ra = _select(df, a)
    one_sample = b is None
    rb = ra.assign(**{metric: 0.0}).drop(columns=[f"{metric}_se"], errors="ignore") if one_sample and metric in df \
        else _select(df, b or {})
    if not len(ra) or not len(rb) or metric not in df.columns:
        return dict(_EMPTY)
    keys = list(pair_on)
    sa, sb = ra.groupby(keys)[metric].mean(), rb.groupby(keys)[metric].mean()
    common = sa.index.intersection(sb.index)
    va, vb = sa[common].astype(float), sb[common].astype(float)
    ok = ~(va.isna().to_numpy() | vb.isna().to_numpy())
    va, vb = va[ok], vb[ok]
    n = len(va)
    if n == 0:
        return dict(_EMPTY)
    d = va.to_numpy() - vb.to_numpy()
    mean = float(d.mean())
    se_seed = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    if n > 1 and se_seed <= 1e-9 * max(1.0, abs(mean)):
        se_seed = 0.0                     # identical differences up to float rounding: no spread over seeds
    se_floor, floor, n_ex, mc = 0.0, "", 0, np.nan
    paired_ex = examples is not None and examples.has(metric) and examples.id_column in ra.columns \
        and (one_sample or examples.id_column in rb.columns)
    if paired_ex:
        vs, nx = [], []
        ga = ra.groupby(keys)[examples.id_column].agg(list)
        gb = None if one_sample else rb.groupby(keys)[examples.id_column].agg(list)
        for k in va.index:
            v, nn = examples.variance(metric, ga[k], [] if one_sample else gb[k])
            vs.append(v)
            nx.append(nn)
        if np.all(np.isfinite(vs)):
            se_floor, floor, n_ex = float(np.sqrt(np.mean(vs)) / np.sqrt(n)), "paired examples", int(min(nx))
            o = examples.outcomes[metric]
            if n == 1 and o.stat == "accuracy" and not one_sample:
                ea, eb = examples.get(ga[va.index[0]][0], o.measure), examples.get(gb[va.index[0]][0], o.measure)
                _, xa, xb = np.intersect1d(ea["example"], eb["example"], return_indices=True)
                mc = M.mcnemar_p(ea["correct"][xa], eb["correct"][xb])
        else:
            paired_ex = False
    if not paired_ex:
        sea, seb = test_set_se(ra, metric), test_set_se(rb, metric)
        if sea is not None and (seb is not None or one_sample):
            ea = ra.assign(_se=sea).groupby(keys)["_se"].mean()[va.index]
            eb = 0.0 if one_sample else rb.assign(_se=seb).groupby(keys)["_se"].mean()[vb.index].to_numpy()
            se_floor = float(np.sqrt(np.mean(ea.to_numpy() ** 2) + np.mean(np.square(eb))) / np.sqrt(n))
            floor = "independent" if not one_sample else "one sample"
    half_seed = stats.t.ppf(1 - ALPHA / 2, n - 1) * se_seed if n > 1 else np.nan
    half_floor = stats.norm.ppf(1 - ALPHA / 2) * se_floor
    if n > 1 and not half_floor > half_seed:
        se, dof, noise = se_seed, n - 1, "seeds"
    else:
        se, dof, noise = se_floor, np.inf, "test set"
    half = np.nanmax([half_seed, half_floor])
    equal = bool(np.all(va.to_numpy() == vb.to_numpy())) and not one_sample
    return {"a": float(va.mean()), "b": float(vb.mean()), "diff": mean, "se": se, "se_seed": se_seed,
            "se_floor": se_floor, "noise": noise, "floor": floor, "ci_low": mean - half, "ci_high": mean + half,
            "df": dof, "n": n, "n_examples": n_ex, "mcnemar_p": mc, "equal": equal,
            "equal_value": float(va.iloc[0]) if equal else np.nan}


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


def _tally(table: pd.DataFrame) -> str:
    """The verdict of a set of comparisons (one family of one claim)."""
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
        out = SUPPORTED if k == n else f"supported on {k} of {n} planned comparisons"
    elif con == k:
        out = CONTRADICTED if k == n else f"contradicted on {k} of {n} planned comparisons"
    elif sup and not con:
        out = f"partly supported ({sup}/{k} beyond noise, none contradicted)"
    elif con and not sup:
        out = f"partly contradicted ({con}/{k} beyond noise, none supported)"
    elif sup and con:
        out = f"mixed ({sup}/{k} supported, {con}/{k} contradicted)"
    elif tested.str.contains("equivalence margin").all():
        out = "not resolved: noise wider than the equivalence margin"
    elif tested.nunique() == 1 and not tested.iloc[0].endswith("within noise"):
        out = tested.iloc[0]              # one reason for all (e.g. "a = b = 0 in every pair", "no measurable noise")
    else:
        out = "not resolved: within noise"
    untested = n - k
    planned = "" if out.startswith(("supported on", "contradicted on")) or not untested else \
        f"; {untested} of {n} planned comparison(s) without data"
    one_seed = "pairs" in table and (table.loc[tested.index, "pairs"] == 1).any()
    return out + tail + planned + (f"; {ONE_SEED}" if one_seed else "")


def claim_verdict(table: pd.DataFrame, note: str = "", claim: Claim | None = None) -> str:
    """All primary comparisons of one claim → one verdict, with how many comparisons point the opposite way, on
    how many of the planned comparisons it rests, and whether training variance was measured. A structural claim
    is labelled so (its comparisons judge the stated magnitude); a scoped claim carries its scope."""
    if note:
        return note
    prim = table[table["family"] == "primary"] if "family" in table and len(table) else table
    out = _tally(prim)
    if claim is not None and claim.structural:
        out = f"structural ({claim.structural}); the paper's magnitude: {out}"
    if claim is not None and claim.scope:
        out = f"scoped ({claim.scope}): {out}"
    return out


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
    """claims → (summary: one row per claim with its verdict; details: every comparison). `tables` is one results
    table or {name: table} read by each claim's `table`; `examples` likewise one Examples or {name: Examples}
    (the per-example outcomes behind that table). A claim whose table or metric is absent is not tested."""
    summary, details = [], []
    for cl in claims:
        df = tables.get(cl.table) if isinstance(tables, dict) else tables
        df = df if df is not None else pd.DataFrame()
        ex = examples.get(cl.table) if isinstance(examples, dict) else examples
        t = compare_claim(df, cl, ex) if cl.comparisons and not cl.note else pd.DataFrame(columns=["verdict"])
        if len(t):
            details.append(t)
        summary.append({"claim": cl.id, "paper": cl.paper, "paper says": cl.text, "metric": cl.metric,
                        "comparisons": len(t), "our verdict": claim_verdict(t, cl.note, cl),
                        "secondary": secondary_verdict(t) if len(t) else "", "shown in": cl.shown_in})
    s = pd.DataFrame(summary).set_index("claim") if summary else pd.DataFrame()
    d = pd.concat(details, ignore_index=True) if details else pd.DataFrame()
    return s, d


__all__ = ["ALPHA", "LEVEL", "EXPECTS", "FAMILIES", "EXACT_METRICS", "ONE_SEED", "Comparison", "Claim", "Outcome",
           "Examples", "paired", "p_values", "holm", "comparison_verdict", "compare_claim", "claim_verdict",
           "secondary_verdict", "evaluate", "accuracy_se", "test_set_se"]
