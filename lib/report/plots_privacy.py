"""Figures of notebook 09 (privacy at matched utility): the privacy-utility frontier, drawn from leakage.csv."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .theme import FONT, THEME, _legend_below, grid_size

ROLE_STYLE = {"dp": ("o-", "DP-SGD"), "regularised": ("s--", "regularised ANN")}


def frontier(leak: pd.DataFrame, attack: str, title: str = ""):
    """Two panels per dataset: test accuracy (x) against the population AUC and against the canary TPR at the lowest
    FPR the pooled canaries resolve (log scale), for one attack. The baselines are curves through their settings in
    order of accuracy (DP-SGD: the ANN at each ε, clipping only as its ε = ∞ end; the SNN's DP points as open
    markers; the regularised ANN, with the undefended ANN as its unregularised end), every heuristic defence a
    labelled point; 95% intervals (±1.96 SE) both ways. A canary TPR of 0 (no IN canary above the threshold) is drawn
    on the floor of the log axis, half a canary below the smallest non-zero TPR (1 / IN canaries)."""
    d = leak[leak.attack == attack]
    dss = list(dict.fromkeys(d.dataset))
    fig, axes = plt.subplots(len(dss), 2, figsize=grid_size(2, len(dss), panel="wide"), squeeze=False)
    defences = list(dict.fromkeys(d[d.role == "defence"].label))
    pal = dict(zip(defences, sns.color_palette(THEME["palette"]["categorical"], len(defences) + 3)[3:]))
    base_col = {"dp": "0.25", "regularised": "0.55"}
    for r, ds in enumerate(dss):
        g = d[d.dataset == ds]
        ref = g[g.role == "reference"]
        floor = 0.5 / float(g.canary_in.max()) if g.canary_in.notna().any() else np.nan
        for c, (metric, ylab) in enumerate((("auc", "population AUC"), ("canary_tpr", "canary TPR"))):
            ax = axes[r, c]
            if metric == "canary_tpr":   # a TPR of 0 on the log axis's floor
                g = g.assign(canary_tpr=g.canary_tpr.clip(lower=floor))
                ref = g[g.role == "reference"]
            for role, (fmt, name) in ROLE_STYLE.items():
                own = g[(g.role == role) & (g.kind == "ann")]
                pts = (own if role == "dp" else pd.concat([own, ref])).sort_values("test_acc")
                ax.plot(pts.test_acc, pts[metric], fmt, color=base_col[role], ms=4, lw=1, label=name)
                for p in pts.itertuples():
                    if role == "dp" and p.role == "dp":
                        eps = "∞" if p.epsilon == float("inf") else f"{p.epsilon:g}"
                        ax.annotate(f"ε {eps}", (p.test_acc, getattr(p, metric)), fontsize=FONT["small"],
                                    xytext=(3, 3), textcoords="offset points", color=base_col[role])
            snn_dp = g[(g.role == "dp") & (g.kind == "snn")]
            ax.plot(snn_dp.test_acc, snn_dp[metric], "o", mfc="none", color=base_col["dp"], ms=6, label="DP-SGD (SNN)")
            ax.errorbar(ref.test_acc, ref[metric], xerr=1.96 * ref.test_acc_se, yerr=1.96 * ref[f"{metric}_se"],
                        fmt="D", color="k", ms=5, lw=1, capsize=2, label="undefended ANN")
            for lab in defences:
                p = g[g.label == lab]
                ax.errorbar(p.test_acc, p[metric], xerr=1.96 * p.test_acc_se, yerr=1.96 * p[f"{metric}_se"],
                            fmt="*", ms=9, lw=1, capsize=2, color=pal[lab], label=lab)
            if metric == "canary_tpr":
                ax.set_yscale("log", nonpositive="clip")
                fpr = g.canary_fpr.dropna()
                if len(fpr):
                    ax.axhline(float(fpr.iloc[0]), color=THEME["palette"]["reference"], ls=":", lw=1)
                    ylab += f" at FPR {100 * float(fpr.iloc[0]):.3g}%"
                if floor == floor and (g.canary_tpr <= floor).any():
                    ax.axhline(floor, color=THEME["palette"]["reference"], ls="--", lw=0.6)
                    ax.annotate("0 (none found)", (0.01, floor), xycoords=("axes fraction", "data"),
                                xytext=(0, 3), textcoords="offset points", fontsize=FONT["small"],
                                color=THEME["palette"]["reference"])
            else:
                ax.axhline(0.5, color=THEME["palette"]["reference"], ls=":", lw=1)
            ax.set_xlabel("test accuracy (%)"), ax.set_ylabel(ylab)
            ax.set_title(f"{ds}: {attack}", fontsize=FONT["title"])
    rows = -(-(4 + len(defences)) // 3)   # legend rows: the 4 baseline entries and one per defence, 3 columns
    return _legend_below(fig, axes[0, 0], title, y=-0.18 - 0.05 * max(0, rows - 3), ncol=3)
