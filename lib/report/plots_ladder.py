"""Figures of notebook 08: papers A and B under the attack ladder."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .theme import DATASET_LABELS, FONT, KIND_COLORS, THEME, _legend_below, grid_size, label


def ladder_panels(summ: pd.DataFrame, metric: str = "auc", settings=None, title: str = ""):
    """One panel per dataset: the mean `metric` over paired targets (auc or tpr_low) of each rung of the ladder (x, in
    table order), one marker series per setting with its 95% t-interval over targets; chance as a dotted line
    (0.5 for AUC, the mean chance TPR at the reported FPR for tpr_low). Drawn from ladder.summary's table."""
    d = summ if settings is None else summ[summ.setting.isin(settings)]
    dss = list(dict.fromkeys(d.dataset))
    attacks = list(dict.fromkeys(d.attack))
    labels = list(dict.fromkeys(d.label))
    fig, axes = plt.subplots(1, len(dss), figsize=grid_size(len(dss), panel="wide"), squeeze=False, sharey=True)
    pal = sns.color_palette(THEME["palette"]["categorical"], len(labels))
    w = 0.8 / max(len(labels), 1)
    for ax, ds in zip(axes[0], dss):
        g0 = d[d.dataset == ds]
        for i, lab in enumerate(labels):
            g = g0[g0.label == lab].set_index("attack").reindex(attacks)
            x = [j + (i - (len(labels) - 1) / 2) * w for j in range(len(attacks))]
            ax.errorbar(x, g[metric], yerr=g[f"{metric}_half"], fmt="o", ms=3.5, lw=1, capsize=2, color=pal[i], label=lab)
        chance = 0.5 if metric == "auc" else float(g0.tpr_low_chance.mean())
        ax.axhline(chance, color=THEME["palette"]["reference"], ls=":", lw=1)
        ax.set_xticks(range(len(attacks)), attacks, rotation=35, ha="right", fontsize=FONT["small"])
        sub = f" (TPR at FPR {100 * g0.fpr_low.iloc[0]:g}%)" if metric == "tpr_low" else ""
        src = g0.data_source.iloc[0] if "data_source" in g0 else None
        ax.set_title(f"{label(ds, src)}{sub}", fontsize=FONT["title"])
    fprs = sorted(set(d.fpr_low)) if "fpr_low" in d else []
    at = "/".join(f"{100 * f:g}%" for f in fprs)
    axes[0, 0].set_ylabel({"auc": "attack AUC", "tpr_low": f"TPR at {at} FPR" if at else "TPR"}.get(metric, metric))
    return _legend_below(fig, axes[0, 0], title, y=-0.12, ncol=3)


def ladder_roc(roc: pd.DataFrame, attack: str, settings=None, title: str = ""):
    """Log-log ROC of one rung, pooled over targets: one panel per dataset, one line per setting."""
    d = roc[roc.attack == attack]
    d = d if settings is None else d[d.setting.isin(settings)]
    dss = list(dict.fromkeys(d.dataset))
    fig, axes = plt.subplots(1, len(dss), figsize=grid_size(len(dss), panel="small"), squeeze=False)
    labels = list(dict.fromkeys(d.label))
    pal = dict(zip(labels, sns.color_palette(THEME["palette"]["categorical"], len(labels))))
    for ax, ds in zip(axes[0], dss):
        sub = d[d.dataset == ds]
        for lab, g in sub.groupby("label", sort=False):
            ax.plot(g.fpr, g.tpr.clip(lower=1e-4), lw=1, color=pal[lab], label=lab)
        lo = max(float(sub.fpr.min()), 1e-4)
        ax.plot([lo, 1], [lo, 1], color=THEME["palette"]["reference"], lw=0.6, ls=":")
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlim(lo, 1), ax.set_ylim(lo, 1)
        ax.set_xlabel("FPR"), ax.set_ylabel("TPR")
        ax.set_title(label(ds, sub.data_source.iloc[0] if "data_source" in sub else None), fontsize=FONT["title"])
    return _legend_below(fig, axes[0, 0], title or f"{attack}, pooled over targets", y=-0.15, ncol=3)


def gap_vs_auc(summ: pd.DataFrame, attack: str, title: str = ""):
    """Train−test gap (x, points) against the attack's AUC (y) of each setting × dataset, ANN vs SNN coloured."""
    d = summ[summ.attack == attack]
    fig, ax = plt.subplots(figsize=THEME["panel"]["wide"])
    markers = dict(zip(dict.fromkeys(d.dataset), "osD^v"))
    for (ds, kind), g in d.groupby(["dataset", "kind"], sort=False):
        ax.scatter(g.gap, g.auc, s=18, marker=markers[ds], color=KIND_COLORS.get(kind, "k"),
                   label=f"{DATASET_LABELS.get(ds, ds)}, {kind.upper()}")
    ax.axhline(0.5, color=THEME["palette"]["reference"], ls=":", lw=1)
    ax.set_xlabel("train − test accuracy (points)"), ax.set_ylabel(f"AUC ({attack})")
    ax.legend(frameon=False, fontsize=FONT["small"], loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig
