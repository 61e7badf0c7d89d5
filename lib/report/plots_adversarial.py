"""Figures of paper D (notebook 07): adversarial robustness of SEW/Spiking-ResNets and their gradient-masking checks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .theme import FONT, THEME, _legend_below, grid_size


def net_color(kind: str, pool: str, defence: str = "none") -> str:
    """Paper D's nets: SEW (max / avg pool), Spiking-ResNet, the ANN twin; any adversarially trained net in one
    colour of its own."""
    pal = THEME["palette"]["net"]
    if defence not in ("none", None) and defence == defence:      # NaN: a table written before defences
        return pal["defended"]
    return pal["sew_avg"] if (kind == "sew" and pool == "avg") else pal.get(kind, "0.3")


def _defence(g: pd.DataFrame) -> str:
    return g.defence.iloc[0] if "defence" in g else "none"


def adv_sweep(sweep: pd.DataFrame, chance: float, title: str = ""):
    """Paper D Fig. 2: accuracy (%) against ε (1/255, log axis) under FGSM and PGD, one line per net, with the 95%
    Wilson band over the attacked images; clean accuracy at the left edge (ε = 0 is drawn at the smallest ε / 2)."""
    atks = [a for a in ("FGSM", "PGD") if a in set(sweep.attack)]
    fig, axes = plt.subplots(1, len(atks), figsize=grid_size(len(atks), panel="wide"), sharey=True, squeeze=False)
    x0 = sweep.eps_255[sweep.eps_255 > 0].min() / 2
    for ax, atk in zip(axes[0], atks):
        for (model, kind, pool), g in sweep[sweep.attack.isin([atk, "clean"])].groupby(["model", "kind", "pool"],
                                                                                       sort=False):
            g = g.assign(x=g.eps_255.where(g.eps_255 > 0, x0)).sort_values("x")
            c = net_color(kind, pool, _defence(g))
            ax.plot(g.x, g.test_acc, "o-", ms=3, lw=1, color=c, label=model)
            ax.fill_between(g.x, g.ci_low, g.ci_high, color=c, alpha=0.15, lw=0)
        ax.axhline(chance, color=THEME["palette"]["reference"], ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ε (×1/255; leftmost point: clean)"), ax.set_ylabel("accuracy (%)")
        ax.set_title(atk, fontsize=FONT["title"])
    _legend_below(fig, axes[0][0], "", y=-0.22, ncol=2)
    fig.suptitle(title, fontsize=FONT["suptitle"])
    fig.tight_layout()
    return fig


def grad_sparsity_layers(layers: pd.DataFrame, title: str = ""):
    """Paper D Fig. 5: % exact zeros of each module's input gradient (mean over batches), modules in forward order
    top to bottom, one bar per net (max- vs avg-pool SEW, …)."""
    order = layers.drop_duplicates("name").sort_values("order")
    names = order.name.tolist()
    models = list(dict.fromkeys(layers.model))
    fig, ax = plt.subplots(figsize=(THEME["width"]["one_and_half"], 1.0 + 0.16 * len(names) * max(len(models), 1)))
    h = 0.8 / max(len(models), 1)
    for i, (model, g) in enumerate(layers.groupby("model", sort=False)):
        g = g.set_index("name").reindex(names)
        kind, pool = g.kind.dropna().iloc[0], g.pool.dropna().iloc[0]
        ax.barh([j + (i - (len(models) - 1) / 2) * h for j in range(len(names))], g.grad_input_zero_pct, height=h,
                color=net_color(kind, pool, _defence(g)), label=model)
    short = [n.replace("net.", "").replace(".", " ") for n in names]
    ax.set_yticks(range(len(names)), [f"{s} ({t})" for s, t in zip(short, order.type)], fontsize=FONT["small"])
    ax.invert_yaxis()
    ax.set_xlabel("zeros in the gradient w.r.t. the module's input (%)")
    ax.legend(frameon=True, loc="lower right", fontsize=FONT["legend"])
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig


def masking_checks(summ: pd.DataFrame, chance: float, title: str = ""):
    """Accuracy (%) under each gradient-masking check, one panel per net, 95% Wilson intervals, the authors' attacks
    first; rows are aligned across panels (a check that does not apply to a net is left empty). A check that takes
    accuracy far below the authors' PGD means their PGD was masked."""
    models = list(dict.fromkeys(summ.model))
    rows = list(dict.fromkeys(summ.attack))
    fig, axes = plt.subplots(1, len(models), figsize=(grid_size(len(models), panel="wide")[0], 0.9 + 0.3 * len(rows)),
                             sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        g = summ[summ.model == model]
        y = [rows.index(a) for a in g.attack]
        c = net_color(g.kind.iloc[0], g.pool.iloc[0], _defence(g))
        ax.barh(y, g.test_acc, color=c, alpha=0.85)
        ax.errorbar(g.test_acc, y, xerr=[g.test_acc - g.ci_low, g.ci_high - g.test_acc], fmt="none",
                    ecolor="0.2", lw=0.8, capsize=2)
        ax.axvline(chance, color=THEME["palette"]["reference"], ls=":", lw=1)
        ax.set_xlabel("accuracy (%)"), ax.set_title(model, fontsize=FONT["title"])
    axes[0][0].set_yticks(range(len(rows)), rows, fontsize=FONT["small"])
    axes[0][0].invert_yaxis()          # shared: once
    fig.suptitle(title, fontsize=FONT["suptitle"])
    fig.tight_layout()
    return fig
