"""Notebook 08's tables from the per-target results (lib.stages.ladder.run): the summary over targets, the ladder
claims' verdict grid, the reading, and the "as published" switches. Pandas on result tables only: nothing here
trains or attacks."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import verdicts as V

LADDER = ("SVM (paper A)", "loss", "LiRA offline", "LiRA online", "RMIA")   # the rungs, weakest first
AS_PUBLISHED = "SVM (as published)"


def fpr_label(fpr: float) -> str:
    """How a TPR's FPR is named wherever it is shown: "TPR at 10% FPR"; "low FPR" is kept for ≤ 1%."""
    return f"TPR at {100 * fpr:g}% FPR"


def summary(per: pd.DataFrame) -> pd.DataFrame:
    """Mean over targets of each (dataset, setting, attack), with the 95% t-interval of the AUC and TPR over
    targets and the mean train−test gap: the table printed beside every AUC."""
    from scipy import stats
    keys = ["dataset", "setting", "label", "kind", "attack"] + (["data_source"] if "data_source" in per else [])
    rows = []
    for k, g in per.groupby(keys, sort=False):
        n = len(g)
        q = stats.t.ppf(0.975, n - 1) if n > 1 else np.nan
        r = dict(zip(keys, k))
        for col in ("auc", "tpr_low"):
            v = g[col].astype(float)
            r[col], r[f"{col}_half"] = float(v.mean()), float(q * v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        r.update(fpr_low=float(g.fpr_low.iloc[0]), tpr_low_chance=float(g.tpr_low_chance.mean()), targets=n,
                 train_acc=float(g.train_acc.mean()), test_acc=float(g.test_acc.mean()), gap=float(g.gap.mean()))
        rows.append(r)
    return pd.DataFrame(rows)


def verdict_grid(details: pd.DataFrame, attacks=LADDER, classes: bool = False) -> pd.DataFrame:
    """The ladder claims' cells as a grid: rows (claim, metric), columns the attacks, each cell the verdict of its
    comparisons (one per dataset; Holm-adjusted within the claim's family, lib.claims.verdicts.tally), the primary
    cell marked "[primary]"; with `classes`, each cell's verdict class instead (lib.claims.verdicts.CLASSES).
    `details`: the comparisons lib.claims.verdicts.evaluate returns for claims.ladder."""
    from ..claims.registry import ladder_parts
    d = details.assign(attack=[ladder_parts(c)[1] for c in details.comparison],
                       label=[ladder_parts(c)[2] for c in details.comparison])
    rows = []
    for (claim, metric), g in d.groupby(["claim", "metric"], sort=False):
        labels = sorted(set(g.label))
        name = labels[0] if len(labels) == 1 else f"{labels[0]} … {labels[-1]}"
        r = {"claim": claim, "metric": name}
        for atk, c in g.groupby("attack", sort=False):
            v, cls = V.tally(c)
            r[atk] = cls if classes else v + (" [primary]" if (c.family == "primary").all() else "")
        rows.append(r)
    out = pd.DataFrame(rows).set_index(["claim", "metric"])
    return out[[a for a in attacks if a in out.columns]]


def reading(claims: pd.DataFrame, grid: pd.DataFrame, summ: pd.DataFrame, primary: dict) -> str:
    """Notebook 08's reading, one line per ladder claim judged: its verdict on its primary cell (`primary`:
    params.yaml → 08_attack_ladder.primary), the AUC cells of paper A's SVM and of the strongest rungs (`grid`:
    verdict_grid), and LiRA online's mean AUC of the two settings per dataset with their train−test gaps (`summ`:
    summary). `claims`: evaluate's claims table (index = claim id)."""
    from ..claims.registry import LADDER_CLAIMS
    from ..report.plots import label
    lines = []
    for cid, (pp, a, b, text) in LADDER_CLAIMS.items():
        if cid not in claims.index:
            continue
        auc = grid.loc[cid].loc["AUC"] if "AUC" in grid.loc[cid].index else pd.Series(dtype=str)
        strong = [x for x in ("LiRA online", "RMIA") if x in auc.index]
        weak = auc.get("SVM (paper A)", "—")
        parts = []
        for ds in dict.fromkeys(summ.dataset):
            va = summ[(summ.dataset == ds) & (summ.setting == a) & (summ.attack == "LiRA online")]
            vb = summ[(summ.dataset == ds) & (summ.setting == b) & (summ.attack == "LiRA online")]
            if len(va) and len(vb):
                parts.append(f"{label(ds)} {va.auc.iloc[0]:.3f} vs {vb.auc.iloc[0]:.3f} "
                             f"(gaps {va.gap.iloc[0]:.0f} vs {vb.gap.iloc[0]:.0f} points)")
        lines.append(f"* **{cid}** ({text}): **{claims.loc[cid, 'our verdict']}** on its primary cell "
                     f"({primary[cid]['attack']}, {primary[cid]['metric']}). AUC cells: paper A's SVM: *{weak}*; "
                     + "; ".join(f"{x}: *{auc[x]}*" for x in strong)
                     + (f". LiRA-online AUC {a} vs {b}: " + "; ".join(parts) if parts else "") + ".")
    return "\n".join(lines)


def svm_vs_strongest(summ: pd.DataFrame, settings_shown) -> str:
    """Paper A's SVM against the strongest rung, per dataset (the settings shown, mean AUC over targets)."""
    from ..report.plots import label
    d = summ[summ.setting.isin(settings_shown) & summ.attack.isin(LADDER)]
    out = []
    for ds, g in d.groupby("dataset", sort=False):
        svm = g[g.attack == "SVM (paper A)"].auc
        best = g.loc[g.auc.idxmax()]
        out.append(f"{label(ds)}: SVM {svm.min():.3f}–{svm.max():.3f}, strongest {best.attack} "
                   f"{best.auc:.3f} ({best.label}, gap {best.gap:.0f} points)")
    return "; ".join(out)


# ----------------------------------------------------------------------------- "as published" switches

# (switch, what the published code / paper did, what this project uses by default, a (as published), b (the default)):
# a and b are attacks (split_mode: the same models, two shadows) or setting ids (the surrogates: every rung) —
# judged on the regime's paired targets. Formulas as lib.core.neurons.SURROGATES states them (x = U − θ).
SWITCHES = (
    ("split_mode", "shadow = 80% of the target's members + 20% of its non-members (authors' earlier code)",
     "shadow = an independent random half of the population", "SVM (as published)", "SVM (paper A)"),
    ("spike rate escape", "snntorch ≤ 0.7: slope·exp(−slope·|U − θ − 1|)", "snntorch 1.0: slope·exp(−β·|U − θ − 1|)",
     "snn_sre_legacy", "snn_sre"),
    ("triangular surrogate", "snntorch's signed step (+θ below, −θ above threshold)", "a true triangle max(0, 1 − |U − θ|)",
     "snn_tri", "snn_tri_true"),
)


def switch_table(per: pd.DataFrame, attacks=LADDER, metrics=("auc", "tpr_low", "test_acc")) -> pd.DataFrame:
    """Each switch of SWITCHES as rows: a (as published) − b (corrected), paired on target, per dataset (and setting
    for split_mode; per attack for the surrogate switches), with the verdict module's interval and noise source."""
    from ..claims.verdicts import paired
    rows = []
    for name, was, now, a, b in SWITCHES:
        if name == "split_mode":
            for (ds, st), g in per[per.attack == a].groupby(["dataset", "setting"], sort=False):
                for metric in ("auc", "tpr_low"):
                    r = paired(per, metric, {"dataset": ds, "setting": st, "attack": a},
                               {"dataset": ds, "setting": st, "attack": b}, ("target",))
                    rows.append(_switch_row(name, was, now, ds, st, b, metric, r))
            continue
        for ds in sorted(set(per[per.setting == a].dataset) & set(per[per.setting == b].dataset)):
            for atk in attacks:
                for metric in metrics:
                    if metric == "test_acc" and atk != attacks[0]:
                        continue   # accuracy does not depend on the attack
                    r = paired(per, metric, {"dataset": ds, "setting": a, "attack": atk},
                               {"dataset": ds, "setting": b, "attack": atk}, ("target",))
                    rows.append(_switch_row(name, was, now, ds, f"{a} vs {b}", "—" if metric == "test_acc" else atk,
                                            metric, r))
    return pd.DataFrame(rows)


def _switch_row(name, was, now, ds, setting, atk, metric, r) -> dict:
    return {"switch": name, "as published": was, "default here": now, "dataset": ds, "setting": setting,
            "attack": atk, "metric": metric, "as published value": r["a"], "default value": r["b"],
            "published − default": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "pairs": r["n"],
            "noise": r["noise"]}


__all__ = ["AS_PUBLISHED", "LADDER", "SWITCHES", "fpr_label", "reading", "summary", "svm_vs_strongest", "switch_table",
           "verdict_grid"]
