"""Figures of paper C (notebook 06): post-training quantization under LiRA."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .theme import FONT, THEME, _legend_below, grid_size


PTQ_COLORS = THEME["palette"]["ptq"]
PTQ_LABELS = {"full precision": "full precision", "rtn": "round-to-nearest", "adaround": "AdaRound", "brecq": "BRECQ",
              "obc": "OBC", "gptq": "GPTQ"}
BIT_ORDER = [4, 2, 1.58, 1]


def _bits_label(b) -> str:
    return "FP" if b == 32 else f"{b:g}-bit"


def ptq_accuracy(pooled: pd.DataFrame, fp_acc: float, title: str = ""):
    """Paper C Fig. 2: test accuracy per PTQ method × bits (mean over targets and runs ± sd), the full-precision
    accuracy as a dashed line, chance as a dotted one. `pooled`: plain rows (last_bits = bits)."""
    fig, ax = plt.subplots(figsize=grid_size(1, panel="wide"))
    bits = [b for b in BIT_ORDER if b in set(pooled.bits)]
    methods = [m for m in PTQ_COLORS if m in set(pooled.method)]
    for j, m in enumerate(methods):
        g = pooled[pooled.method == m].groupby("bits").test_acc.agg(["mean", "std"]).reindex(bits)
        x = [i + (j - (len(methods) - 1) / 2) * 0.12 for i in range(len(bits))]
        ax.errorbar(x, g["mean"], yerr=g["std"].fillna(0), fmt="o-", color=PTQ_COLORS[m], label=PTQ_LABELS[m],
                    capsize=2, lw=1)
    ax.axhline(fp_acc, color=PTQ_COLORS["full precision"], ls="--", lw=1, label="full precision")
    ax.set_xticks(range(len(bits)), [_bits_label(b) for b in bits])
    ax.set_xlabel("weight bits"), ax.set_ylabel("test accuracy (%)")
    ax.legend(frameon=False, fontsize=FONT["legend"])
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig


def ptq_tpr(pooled: pd.DataFrame, metric: str, title: str = ""):
    """Paper C Fig. 3: pooled TPR at a low FPR per method × bits, one panel per attack (LiRA online / offline);
    log y, a TPR of 0 drawn at the axis floor 10⁻⁴; dashed: full precision; dotted: chance (TPR = FPR). Whether the
    pooled non-member count resolves the FPR is in the table beside the figure (`tpr_at_*_status`)."""
    attacks = list(dict.fromkeys(pooled.attack))
    fig, axes = plt.subplots(1, len(attacks), figsize=grid_size(len(attacks)), squeeze=False, sharey=True)
    bits = [b for b in BIT_ORDER if b in set(pooled.bits)]
    fpr = {"tpr_at_0_1pct": 0.001, "tpr_at_1pct": 0.01}[metric]
    for ax, atk in zip(axes[0], attacks):
        sub = pooled[pooled.attack == atk]
        methods = [m for m in PTQ_COLORS if m in set(sub.method) and m != "full precision"]
        for j, m in enumerate(methods):
            g = sub[sub.method == m].groupby("bits")[metric].mean().reindex(bits)
            x = [i + (j - (len(methods) - 1) / 2) * 0.12 for i in range(len(bits))]
            ax.plot(x, g.clip(lower=1e-4), "o-", color=PTQ_COLORS[m], label=PTQ_LABELS[m], lw=1)
        fp = sub[sub.method == "full precision"][metric]
        if len(fp):
            ax.axhline(max(float(fp.mean()), 1e-4), color=PTQ_COLORS["full precision"], ls="--", lw=1,
                       label="full precision")
        ax.axhline(fpr, color=THEME["palette"]["reference"], ls=":", lw=0.8, label=f"chance (TPR = {fpr:g})")
        ax.set_yscale("log")
        ax.set_xticks(range(len(bits)), [_bits_label(b) for b in bits])
        ax.set_title(atk, fontsize=FONT["title"])
        ax.set_xlabel("weight bits")
    axes[0, 0].set_ylabel(f"TPR @ {fpr:.1%} FPR (pooled targets)")
    return _legend_below(fig, axes[0, 0], title, ncol=6)


def ptq_decoupled(pooled: pd.DataFrame, metric: str, title: str = ""):
    """Paper C Fig. 4: accuracy (left) and TPR (right) with and without the 8-bit last layer, per method and bits."""
    fig, axes = plt.subplots(1, 2, figsize=grid_size(2, panel="wide"))
    sub = pooled[pooled.method != "full precision"].copy()
    sub["setting"] = [f"{PTQ_LABELS[m]} {_bits_label(b)}" for m, b in zip(sub.method, sub.bits)]
    sub["last layer"] = ["decoupled (fc {:g}-bit)".format(lb) if lb != b else "same bits" for b, lb in
                         zip(sub.bits, sub.last_bits)]
    for ax, col, lab in ((axes[0], "test_acc", "test accuracy (%)"), (axes[1], metric, metric.replace("_", " "))):
        sns.barplot(sub, x="setting", y=col, hue="last layer", ax=ax, errorbar="sd", palette="Paired")
        ax.tick_params(axis="x", rotation=60)
        ax.set_xlabel(""), ax.set_ylabel(lab)
        ax.legend(frameon=False, fontsize=FONT["small"])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def ptq_scatter(per: pd.DataFrame, metric: str, title: str = ""):
    """Paper C Fig. 6: accuracy against TPR, one point per quantized model (target × calibration run), per attack."""
    attacks = list(dict.fromkeys(per.attack))
    fig, axes = plt.subplots(1, len(attacks), figsize=grid_size(len(attacks)), squeeze=False, sharey=True)
    for ax, atk in zip(axes[0], attacks):
        sub = per[per.attack == atk]
        for m in [m for m in PTQ_COLORS if m in set(sub.method)]:
            g = sub[sub.method == m]
            ax.scatter(g[metric], g.test_acc, color=PTQ_COLORS[m], label=PTQ_LABELS[m], s=18, alpha=0.8)
        ax.set_title(atk, fontsize=FONT["title"])
        ax.set_xlabel(metric.replace("_", " "))
    axes[0, 0].set_ylabel("test accuracy (%)")
    return _legend_below(fig, axes[0, 0], title)


def ptq_roc(roc: pd.DataFrame, title: str = ""):
    """Log-log ROC of the pooled attack per configuration: one panel per attack, one line per method × bits."""
    attacks = list(dict.fromkeys(roc.attack))
    fig, axes = plt.subplots(1, len(attacks), figsize=grid_size(len(attacks), panel="tall"), squeeze=False)
    for ax, atk in zip(axes[0], attacks):
        sub = roc[roc.attack == atk]
        for (m, b), g in sub.groupby(["method", "bits"], sort=False):
            ls = {32: "-", 4: "-", 2: "--", 1.58: ":", 1: "-."}.get(b, "-")
            ax.plot(g.fpr, g.tpr.clip(lower=1e-5), color=PTQ_COLORS.get(m, "k"), ls=ls, lw=1,
                    label=f"{PTQ_LABELS.get(m, m)} {_bits_label(b)}")
        lo = max(float(sub.fpr.min()), 1e-5)
        ax.plot([lo, 1], [lo, 1], color=THEME["palette"]["reference"], lw=0.6, ls=":")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlim(lo, 1), ax.set_ylim(lo, 1)
        ax.set_xlabel("FPR"), ax.set_ylabel("TPR")
        ax.set_title(atk, fontsize=FONT["title"])
    h, l = axes[0, 0].get_legend_handles_labels()
    fig.legend(h, l, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=FONT["small"])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def attack_budget(pooled: pd.DataFrame, metric: str, title: str = ""):
    """TPR (pooled full-precision targets) against the OUT shadow/reference models per example, per attack."""
    fig, ax = plt.subplots(figsize=grid_size(1, panel="wide"))
    for atk, g in pooled.groupby(pooled.attack.str.replace(r" \(\d+ refs?\)", "", regex=True), sort=False):
        g = g.sort_values("out_per_example")
        ax.plot(g.out_per_example, g[metric], "o-", lw=1, label=atk)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("OUT models per example used by the attack"), ax.set_ylabel(metric.replace("_", " "))
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig
