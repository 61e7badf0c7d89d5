"""Figures, drawn from results files (tidy frames), never from in-memory training state.

The one module notebooks import (`from lib.report import plots`): the figures of notebooks 00-05 and 99 live here;
the theme and shared helpers (lib.report.theme) and the figures of 06 (plots_ptq), 07 (plots_adversarial), 08
(plots_ladder) and 09 (plots_privacy) are re-exported, so every figure is `plots.<name>`. A notebook shows a figure with
`plots.show(fig, path, alt="what it shows")`: saved as PNG and PDF, displayed once with its alt text, closed."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .theme import (DATASET_LABELS, FONT, KIND_COLORS, THEME, _legend_below, alt_text, apply_theme,  # noqa: F401
                    close, describe, facet_size, grid_size, label, save, show)
from .plots_ptq import (BIT_ORDER, PTQ_COLORS, PTQ_LABELS, attack_budget, ptq_accuracy, ptq_decoupled,  # noqa: F401
                        ptq_roc, ptq_scatter, ptq_tpr)
from .plots_adversarial import adv_sweep, grad_sparsity_layers, masking_checks, net_color  # noqa: F401
from .plots_ladder import gap_vs_auc, ladder_panels, ladder_roc  # noqa: F401
from .plots_privacy import frontier  # noqa: F401


# ---------------------------------------------------------------- data and models (notebooks 00-01)

def sample_grid(tensors: dict, n: int = 8, title: str = ""):
    """One training image of each of the first `n` classes, per image dataset (name -> lib.core.data.Tensors)."""
    names = [k for k, t in tensors.items() if t.family == "image"]
    fig, axes = plt.subplots(len(names), n, figsize=grid_size(n, len(names), "tile"), squeeze=False)
    for r, name in enumerate(names):
        t = tensors[name]
        lo, hi = t.intensity_range
        for c in range(n):
            i = int((t.y_train == c % t.n_classes).nonzero()[0])
            img = ((t.x_train[i] - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0)
            ax = axes[r, c]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"class {int(t.y_train[i])}", fontsize=FONT["small"])
            if c == 0:
                ax.set_ylabel(label(name, t.source).replace(" (", "\n("), fontsize=FONT["small"])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_histograms(sizes: pd.DataFrame, seed: int, title: str = ""):
    """Per dataset: examples per class in each membership pool (one seed)."""
    sub = sizes[(sizes.seed == seed) & (sizes.pool != "eval")]
    cls_cols = [c for c in sub.columns if c.startswith("class_")]
    long = sub.melt(id_vars=["dataset", "pool"], value_vars=cls_cols, var_name="class", value_name="count").dropna()
    long["class"] = long["class"].str.removeprefix("class_").astype(int)
    g = sns.catplot(data=long, x="class", y="count", hue="pool", col="dataset", kind="bar", sharey=False,
                    sharex=False, col_wrap=3, **facet_size())
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


def learning_curves(curves: pd.DataFrame, title: str = ""):
    """Test accuracy (solid) and running train accuracy (dashed) per epoch, mean over seeds, ANN vs SNN."""
    long = curves.melt(id_vars=["dataset", "kind", "seed", "epoch"], value_vars=["train_acc", "test_acc"],
                       var_name="split", value_name="accuracy")
    long["accuracy"] *= 100
    g = sns.relplot(data=long, x="epoch", y="accuracy", hue="kind", style="split", col="dataset", kind="line",
                    palette=KIND_COLORS, col_wrap=3, **facet_size(), facet_kws={"sharey": False},
                    errorbar="sd", markers=True, dashes={"test_acc": "", "train_acc": (3, 2)})
    g.set_axis_labels("epoch", "accuracy (%)")
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


# ---------------------------------------------------------------- paper A §V (notebooks 02-04)

# Fig. 2-3 of paper A: full precision grey solid, 8-bit purple dotted, 4-bit orange dashed, 2-bit blue dash-dot.
BIT_STYLES = {None: dict(color="grey", ls="-", label="FP"), 8: dict(color="purple", ls=":", label="8-bit"),
              4: dict(color="darkorange", ls="--", label="4-bit"), 2: dict(color="tab:blue", ls="-.", label="2-bit")}


def _sweep_rows(results: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """Figure rows of threshold_sweep: (kind, row title, that kind's rows). SNNs get one row for the models whose
    output layer's membrane is quantized (the paper's setting; every LIF layer quantized) and, when the results
    hold them, one for the models whose output membrane is left unquantized (column `output_quant`); the
    full-precision SNNs (single model and one per θ) appear in both."""
    has_oq = "output_quant" in results.columns
    out = []
    for kind in dict.fromkeys(results.kind):
        sub = results[results.kind == kind]
        if kind != "snn" or not has_oq:
            out.append((kind, kind.upper(), sub))
            continue
        oq = sub.output_quant.map(lambda v: None if pd.isna(v) else bool(v))
        fp = sub[sub.act_bits.isna()]
        out.append((kind, "SNN (output quantized)" if (oq == False).any() else "SNN",  # noqa: E712
                    pd.concat([fp, sub[sub.act_bits.notna() & (oq != False)]])))  # noqa: E712
        if (oq == False).any():  # noqa: E712
            out.append((kind, "SNN (output unquantized)", pd.concat([fp, sub[oq == False]])))  # noqa: E712
    return out


def threshold_sweep(results: pd.DataFrame, metric: str, ylabel: str, title: str = ""):
    """Paper A Fig. 2 / 3: `metric` against the threshold θ, one panel per (kind, dataset), one line per
    activation bit width (mean over seeds, bars ± 1 std); full precision as a horizontal line (± 1 std band).
    Rows with act_bits empty and act_threshold set (full-precision SNNs trained at each θ) are drawn as a
    black line with square markers; SNNs whose output membrane is unquantized (output_quant False) get their own row
    of panels (see _sweep_rows)."""
    datasets = list(dict.fromkeys(results.dataset))
    rows = _sweep_rows(results)
    fig, axes = plt.subplots(len(rows), len(datasets), figsize=grid_size(len(datasets), len(rows)), squeeze=False,
                             sharex=True)
    thetas = sorted(results.act_threshold.dropna().unique())
    for r, (kind, row_title, rsub) in enumerate(rows):
        for c, ds in enumerate(datasets):
            ax = axes[r, c]
            sub = rsub[rsub.dataset == ds]
            fp_all = sub[sub.act_bits.isna()]
            fp = fp_all[fp_all.act_threshold.isna()][metric]
            if len(fp):
                st = BIT_STYLES[None]
                ax.axhline(fp.mean(), color=st["color"], ls=st["ls"], label=st["label"])
                if len(fp) > 1:
                    ax.axhspan(fp.mean() - fp.std(), fp.mean() + fp.std(), color="grey", alpha=0.15, lw=0)
            fp_th = fp_all[fp_all.act_threshold.notna()]
            if len(fp_th):
                g = fp_th.groupby("act_threshold")[metric].agg(["mean", "std"]).reset_index()
                ax.errorbar(g.act_threshold, g["mean"], yerr=g["std"].fillna(0), color="black", ls="-", lw=0.9,
                            label="FP SNN at the same θ", marker="s", ms=3, capsize=2)
            for b in sorted(sub.act_bits.dropna().unique(), reverse=True):
                g = sub[sub.act_bits == b].groupby("act_threshold")[metric].agg(["mean", "std"]).reset_index()
                st = BIT_STYLES.get(int(b), dict(color="k", ls="-", label=f"{int(b)}-bit"))
                ax.errorbar(g.act_threshold, g["mean"], yerr=g["std"].fillna(0), color=st["color"], ls=st["ls"],
                            label=st["label"], marker="o", ms=3, capsize=2)
            src = sub.data_source.iloc[0] if len(sub) else None
            ax.set_title(f"{row_title} · {label(ds, src)}", fontsize=FONT["title"])
            ax.set_xticks(thetas)
            if r == len(rows) - 1:
                ax.set_xlabel("threshold θ")
            if c == 0:
                ax.set_ylabel(ylabel)
    handles = {}
    for ax in axes.flat:   # every line style once (the ANN row has no per-θ FP line)
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=5, bbox_to_anchor=(0.5, 1.0),
               frameon=False)
    fig.suptitle(title, y=1.06)
    fig.tight_layout()
    return fig


def roc_panels(roc: pd.DataFrame, hue: str = "method", title: str = ""):
    """ROC curves of the SVM attack (first seed) on log-log axes, one panel per (kind, dataset), one line per
    `hue` value; the diagonal is chance."""
    roc = roc[roc.seed == roc.seed.min()]
    datasets = list(dict.fromkeys(roc.dataset))
    kinds = list(dict.fromkeys(roc.kind))
    fig, axes = plt.subplots(len(kinds), len(datasets), figsize=grid_size(len(datasets), len(kinds)), squeeze=False)
    values = list(dict.fromkeys(roc[hue]))
    colors = dict(zip(values, sns.color_palette(THEME["palette"]["categorical"], len(values))))
    for r, kind in enumerate(kinds):
        for c, ds in enumerate(datasets):
            ax = axes[r, c]
            sub = roc[(roc.dataset == ds) & (roc.kind == kind)]
            for v in values:
                g = sub[sub[hue] == v]
                if len(g):
                    ax.plot(g.fpr.clip(lower=1e-4), g.tpr.clip(lower=1e-4), color=colors[v], label=str(v), lw=1.2)
            ax.plot([1e-4, 1], [1e-4, 1], color="k", lw=0.6, ls=":")
            ax.set_xscale("log"), ax.set_yscale("log")
            ax.set_xlim(1e-3, 1), ax.set_ylim(1e-3, 1)
            ax.set_title(f"{kind.upper()} · {label(ds)}", fontsize=FONT["title"])
            ax.set_xlabel("FPR"), ax.set_ylabel("TPR")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(values), 7), bbox_to_anchor=(0.5, 1.02), frameon=False,
               fontsize=FONT["legend"])
    fig.suptitle(title, y=1.08)
    fig.tight_layout()
    return fig


def auc_vs_paper(summ: pd.DataFrame, paper: pd.DataFrame, x: str = "method", title: str = ""):
    """MIA AUC per configuration: ours (mean ± std over seeds, bars) and the paper's (black markers, labelled),
    one panel per dataset, ANN and SNN side by side."""
    datasets = list(dict.fromkeys(summ.dataset))
    kinds = list(dict.fromkeys(summ.kind))
    fig, axes = plt.subplots(1, len(datasets), figsize=grid_size(len(datasets)), squeeze=False)
    for c, ds in enumerate(datasets):
        ax = axes[0, c]
        sub = summ[summ.dataset == ds]
        methods = list(dict.fromkeys(sub[x]))
        width = 0.8 / len(kinds)
        for k, kind in enumerate(kinds):
            s = sub[sub.kind == kind].set_index(x).reindex(methods)
            pos = [i + (k - (len(kinds) - 1) / 2) * width for i in range(len(methods))]
            ax.bar(pos, s.auc_mean - 0.5, bottom=0.5, width=width, yerr=s.auc_std.fillna(0), capsize=2,
                   color=KIND_COLORS.get(kind, "grey"), label=f"{kind.upper()} (ours)")
            p = paper[(paper.dataset == ds) & (paper.kind == kind)].set_index("method").reindex(methods)
            ax.scatter(pos, p.auc, marker="_", s=120, color="k", zorder=3, label="paper" if k == 0 else None)
        ax.axhline(0.5, color="k", lw=0.6)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=FONT["tick"])
        ax.set_title(label(ds, sub.data_source.iloc[0] if len(sub) else None), fontsize=FONT["title"])
        if c == 0:
            ax.set_ylabel("MIA ROC-AUC")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(kinds) + 1, bbox_to_anchor=(0.5, 1.04), frameon=False)
    fig.suptitle(title, y=1.12)
    fig.tight_layout()
    return fig


def surrogate_gradients(curves: pd.DataFrame, title: str = ""):
    """∂S/∂U against the membrane potential U for each surrogate (curves: columns U, surrogate, grad);
    the vertical line marks the firing threshold θ."""
    names = list(dict.fromkeys(curves.surrogate))
    fig, axes = plt.subplots(1, len(names), figsize=grid_size(len(names), 1, "small"), squeeze=False, sharex=True)
    for ax, name in zip(axes[0], names):
        g = curves[curves.surrogate == name]
        ax.plot(g.U, g.grad, color="k", lw=1.2)
        ax.axvline(float(g.theta.iloc[0]), color="tab:red", lw=0.7, ls=":")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(name.replace("_", " "), fontsize=FONT["tick"])
        ax.set_xlabel("U")
    axes[0, 0].set_ylabel("∂S/∂U")
    fig.suptitle(title, y=1.04)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- paper B (notebook 05)

ENCODING_COLORS = THEME["palette"]["encoding"]
ENCODING_LABELS = {"direct": "Direct (paper A)", "regular_rate": "Rate (deterministic)", "rate": "Rate (Bernoulli)", "poisson_burst": "Poisson-Burst",
                   "delayed_burst": "Delayed-Burst"}


def spike_rasters(raster: pd.DataFrame, title: str = ""):
    """One panel per encoder: spike times (x) of every input element (y, sorted by intensity, brightest on top)."""
    encs = list(dict.fromkeys(raster.encoding))
    fig, axes = plt.subplots(1, len(encs), figsize=grid_size(len(encs), 1, "tall"), sharey=True, squeeze=False)
    order = raster.drop_duplicates("neuron").sort_values(["intensity", "neuron"])
    rank = dict(zip(order.neuron, range(len(order))))
    for ax, enc in zip(axes[0], encs):
        sub = raster[raster.encoding == enc]
        ax.scatter(sub.t, sub.neuron.map(rank), c=sub.intensity, cmap=THEME["palette"]["intensity"], vmin=0, vmax=1,
                   marker="|", s=6,
                   linewidths=0.6)
        n_el = sub.neuron.nunique()
        ax.set_title(f"{ENCODING_LABELS.get(enc, enc)}\n{len(sub)} spikes, {n_el} active inputs", fontsize=FONT["title"])
        ax.set_xlabel("time step t")
    axes[0, 0].set_ylabel("input element (sorted by intensity p)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_vs_auc(summ: pd.DataFrame, auc: str = "auc", title: str = ""):
    """Test accuracy against attack AUC, mean ± std over seeds, one panel per dataset, colour = encoding."""
    dss = list(dict.fromkeys(summ.dataset))
    fig, axes = plt.subplots(1, len(dss), figsize=grid_size(len(dss)), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        sub = summ[summ.dataset == ds]
        for _, r in sub.iterrows():
            ax.errorbar(r[f"{auc}_mean"], r["test_acc_mean"], xerr=r[f"{auc}_std"], yerr=r["test_acc_std"], fmt="o",
                        color=ENCODING_COLORS.get(r.encoding), label=ENCODING_LABELS.get(r.encoding, r.encoding),
                        capsize=2)
        ax.axvline(0.5, color=THEME["palette"]["reference"], lw=0.8, ls=":")
        ax.set_title(label(ds, sub.data_source.iloc[0]), fontsize=FONT["title"])
        ax.set_xlabel(f"MIA AUC ({'trace' if auc.startswith('trace') else 'final step'})")
    axes[0, 0].set_ylabel("test accuracy (%)")
    return _legend_below(fig, axes[0, 0], title, y=-0.08)


def final_vs_trace(results: pd.DataFrame, title: str = ""):
    """Attack AUC with final-step features vs whole-trace features, per encoding and dataset (bars: mean, sd)."""
    long = results.melt(id_vars=["dataset", "encoding", "seed"], value_vars=["auc", "trace_auc"], var_name="features",
                        value_name="AUC")
    long["features"] = long.features.map({"auc": "final step [N, C]", "trace_auc": "whole trace [N, T·C]"})
    g = sns.catplot(data=long, x="encoding", y="AUC", hue="features", col="dataset", kind="bar", errorbar="sd",
                    col_wrap=min(4, long.dataset.nunique()), sharey=False, **facet_size())
    for ax in g.axes.flat:
        ax.axhline(0.5, color=THEME["palette"]["reference"], lw=0.8, ls=":")
        ax.tick_params(axis="x", rotation=30)
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


def efficiency_bars(eff: pd.DataFrame, title: str = ""):
    """Per encoding (colour) and dataset: seconds per epoch, bytes one training step allocates (exact; what the
    memory verdicts use), RSS increase of one training step (not repeatable, for information), spikes per sample."""
    cols = [("seconds_per_epoch", "s / epoch"), ("step_alloc_mb", "one training step: allocated (MB, exact)"),
            ("step_rss_increase_mb", "one training step: RSS increase (MB)"),
            ("spikes_total", "spikes / sample (all layers)")]
    cols = [c for c in cols if c[0] in eff]
    fig, axes = plt.subplots(1, len(cols), figsize=grid_size(len(cols), 1, "wide"), squeeze=False)
    order = [e for e in ENCODING_COLORS if e in set(eff.encoding)]
    for ax, (c, lab) in zip(axes[0], cols):
        sns.barplot(data=eff, x="dataset", y=c, hue="encoding", hue_order=order, palette=ENCODING_COLORS, errorbar="sd",
                    ax=ax)
        ax.set_ylabel(lab), ax.set_xlabel("")
        if ax is not axes[0, -1]:
            ax.get_legend().remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def spikes_per_layer(eff: pd.DataFrame, title: str = ""):
    """Spikes per sample of the input (encoder) and of every LIF layer, per encoding, one panel per dataset."""
    cols = [c for c in eff.columns if c.startswith("spikes_") and c != "spikes_total"]
    long = eff.melt(id_vars=["dataset", "encoding"], value_vars=cols, var_name="layer", value_name="spikes").dropna()
    long["layer"] = long.layer.str.removeprefix("spikes_")
    order = [e for e in ENCODING_COLORS if e in set(long.encoding)]
    g = sns.catplot(data=long, x="layer", y="spikes", hue="encoding", hue_order=order, palette=ENCODING_COLORS,
                    col="dataset", kind="bar", errorbar="sd", sharey=False, sharex=False,
                    col_wrap=min(4, long.dataset.nunique()), **facet_size())
    g.set_axis_labels("layer", "spikes / sample")
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


def transfer_bars(tr: pd.DataFrame, title: str = ""):
    """Target-dataset test accuracy: trained from scratch vs transferred (frozen conv layers), per encoding."""
    long = tr.melt(id_vars=["encoding", "seed"], value_vars=["scratch_test_acc", "transfer_test_acc"],
                   var_name="training", value_name="test accuracy (%)")
    long["training"] = long.training.map({"scratch_test_acc": "from scratch", "transfer_test_acc": "transfer"})
    fig, ax = plt.subplots(figsize=(THEME["width"]["one_and_half"], THEME["panel"]["wide"][1]))
    sns.barplot(data=long, x="encoding", y="test accuracy (%)", hue="training", errorbar="sd", ax=ax)
    ax.tick_params(axis="x", rotation=20)
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig


def sweep_lines(sw: pd.DataFrame, title: str = ""):
    """Sensitivity: test accuracy (top) and attack AUC (bottom) against each swept constant; the dashed line is
    the baseline encoding (mean over seeds). Rows of `sw` with constant == 'none' are the baseline."""
    base = sw[sw.constant == "none"]
    pts = sw[sw.constant != "none"].copy()
    panels = list(dict.fromkeys(zip(pts.dataset, pts.encoding, pts.constant)))
    fig, axes = plt.subplots(2, len(panels), figsize=grid_size(len(panels), 2), squeeze=False)
    for j, (ds, enc, const) in enumerate(panels):
        sub = pts[(pts.dataset == ds) & (pts.encoding == enc) & (pts.constant == const)]
        b = base[base.dataset == ds]
        for i, (m, lab) in enumerate((("test_acc", "test accuracy (%)"), ("auc", "MIA AUC"))):
            ax = axes[i, j]
            sns.lineplot(data=sub, x="value", y=m, errorbar="sd", marker="o", color=ENCODING_COLORS.get(enc), ax=ax)
            if len(b):
                ax.axhline(b[m].mean(), color=ENCODING_COLORS.get(b.encoding.iloc[0], "k"), ls="--", lw=1,
                           label=ENCODING_LABELS.get(b.encoding.iloc[0]))
            ax.set_xlabel(const), ax.set_ylabel(lab if j == 0 else "")
            if i == 0:
                ax.set_title(f"{label(ds)}: {ENCODING_LABELS.get(enc, enc)}", fontsize=FONT["title"])
    axes[0, 0].legend(fontsize=FONT["small"])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- every paper's verdicts (notebook 99)

def verdict_counts(counts: pd.DataFrame, title: str = ""):
    """Claims per paper (rows) stacked by verdict class (lib.stages.summary.counts)."""
    pal = THEME["palette"]["verdict"]
    fig, ax = plt.subplots(figsize=(THEME["width"]["one_and_half"], 0.8 + 0.45 * len(counts)))
    left = pd.Series(0, index=counts.index, dtype=float)
    for cls in counts.columns:
        ax.barh(counts.index.astype(str), counts[cls], left=left, color=pal.get(cls, "0.7"), edgecolor="0.4", lw=0.5,
                label=cls)
        left += counts[cls]
    ax.invert_yaxis()
    ax.set_xlabel("claims"), ax.set_ylabel("paper")
    _legend_below(fig, ax, "", y=-0.35, ncol=3)
    ax.set_title(title, fontsize=FONT["title"])
    fig.tight_layout()
    return fig
