"""The paired statistics behind every comparison (lib.claims.verdicts): a − b of a metric between two row filters
of a tidy results table, paired on seed (or `pair_on`), with its two sources of noise.

    seeds       se_seed  = sd(d)/√n,                     t with n − 1 df      (training variance + test-set noise)
    test set    se_floor = √(mean v_i)/√n,                normal               (what the finite test set can resolve)

v_i is the variance of d_i over the examples, paired on the same examples where the stage stored per-example
outcomes (`Examples`: McNemar's for accuracies, DeLong's paired variance for AUCs, a paired stratified bootstrap for
TPRs at a fixed FPR), else a and b treated as independent (`test_set_se`). The 95% interval is
d̄ ± max(t_{n−1}·se_seed, z·se_floor): a difference counts only when it beats both (lib.claims.verdicts says how
the p-values and verdicts follow).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import metrics as M

ALPHA = 0.05          # two-sided; each one-sided test at ALPHA / 2; verdicts read off the 95% interval
LEVEL = 1 - ALPHA

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

    @classmethod
    def of(cls, frame: pd.DataFrame, params: dict, *, outcomes: dict) -> "Examples":
        """A stage's examples.csv.gz (read as `frame`) with its OUTCOMES and params.yaml → verdicts.bootstrap (the
        paired TPR bootstrap's resamples and seed). Each stage binds its own: `examples_of = partial(Examples.of,
        outcomes=OUTCOMES)`, called as examples_of(frame, params)."""
        b = params["verdicts"]["bootstrap"]
        return cls(frame, outcomes, n_boot=b["n_boot"], seed=b["seed"])

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
            "equal_value": float(va.iloc[0]) + 0.0 if equal else np.nan}   # + 0.0: no "-0"


__all__ = ["ALPHA", "LEVEL", "Outcome", "Examples", "accuracy_se", "test_set_se", "paired"]
