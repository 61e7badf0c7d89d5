"""Figures, drawn from results files (tidy frames), never from in-memory training state."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (files first: no figure is shown unless a cell returns or displays it)
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def _notebook_png() -> None:
    """Under Agg, IPython has no PNG formatter for figures: a notebook cell ending in `fig` (or display(fig)) would
    show only "<Figure size …>" — in JupyterLab and in papermill's executed copies alike. Register one."""
    try:
        from IPython import get_ipython
        if get_ipython() is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats
            set_matplotlib_formats("png")
    except ImportError:
        pass


_notebook_png()

# ---------------------------------------------------------------- one theme for every figure
# Style, context, font sizes, PNG resolution, standard sizes and palettes. apply_theme() runs on import; every
# figure function takes its sizes, fonts and colours from here (no per-figure constants).
THEME = {
    "style": "whitegrid",
    "context": "paper",
    "font": {"base": 9, "title": 9, "label": 9, "tick": 8, "legend": 8, "small": 7, "suptitle": 10},
    "dpi": 150,                                                  # PNG; the PDF is vector
    "width": {"one_column": 3.5, "one_and_half": 5.5, "full": 7.2},   # inches (two-column paper page)
    # one panel of a figure grid / one facet (width, height in inches), by shape
    "panel": {"standard": (3.2, 2.8), "small": (2.4, 2.4), "tall": (3.3, 3.6), "wide": (4.2, 3.2), "tile": (1.1, 1.25)},
    "palette": {
        "kind": {"ann": "#d95f02", "snn": "#1b9e77"},
        "encoding": {"direct": "#7f7f7f", "regular_rate": "#17becf", "rate": "#1f77b4", "poisson_burst": "#2ca02c", "delayed_burst": "#d62728"},
        "categorical": "tab10",      # any other hue (methods, surrogates, pools); also seaborn's default palette
        "intensity": "viridis",      # continuous values (input intensity)
        "ptq": {"full precision": "#4d4d4d", "rtn": "#a6761d", "adaround": "#1f77b4", "brecq": "#2ca02c",
                "obc": "#d62728"},   # paper C's PTQ methods
        "reference": "0.5",          # chance lines, zero lines
        "verdict": {"supported": "#1a9641", "partly supported": "#a6d96a", "mixed": "#ffffbf",
                    "partly contradicted": "#fdae61", "contradicted": "#d7191c", "not resolved": "#bdbdbd",
                    "scoped": "#c2a5cf", "structural": "#92c5de", "not tested": "#f0f0f0"},
        "net": {"sew": "#1b9e77", "sew_avg": "#66a61e", "spiking": "#7570b3", "ann": "#d95f02"},   # paper D's nets
    },
}
FONT = THEME["font"]


def apply_theme() -> None:
    """Set seaborn's style and context and matplotlib's font sizes from THEME (called on import)."""
    f = THEME["font"]
    sns.set_theme(style=THEME["style"], context=THEME["context"], palette=THEME["palette"]["categorical"],
                  rc={"font.size": f["base"], "axes.titlesize": f["title"], "axes.labelsize": f["label"],
                      "xtick.labelsize": f["tick"], "ytick.labelsize": f["tick"], "legend.fontsize": f["legend"],
                      "legend.title_fontsize": f["legend"], "figure.titlesize": f["suptitle"],
                      "savefig.dpi": THEME["dpi"]})


def grid_size(ncols: int, nrows: int = 1, panel: str = "standard") -> tuple[float, float]:
    """Figure size of an nrows × ncols grid of THEME panels of shape `panel`."""
    w, h = THEME["panel"][panel]
    return (w * ncols, h * nrows)


def facet_size(panel: str = "standard") -> dict:
    """height/aspect of one THEME panel for seaborn's figure-level functions (catplot, relplot)."""
    w, h = THEME["panel"][panel]
    return {"height": h, "aspect": w / h}


apply_theme()

KIND_COLORS = THEME["palette"]["kind"]
DATASET_LABELS = {"mnist": "MNIST", "fmnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "iris": "Iris",
                  "breast_cancer": "Breast Cancer"}


def save(fig, path: str | Path) -> Path:
    """Write `fig` as PNG and PDF (same stem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path.with_suffix(".png"), dpi=THEME["dpi"], bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    return path


def label(dataset: str, source: str | None = None) -> str:
    """Dataset name for titles; the CIFAR-10 JPEG stand-in is always named as such."""
    if source and "stand-in" in source:
        return source
    return DATASET_LABELS.get(dataset, dataset)


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


def _legend_below(fig, ax, title: str, y: float = -0.1, ncol: int | None = None):
    """One legend for the whole figure (from `ax`'s entries) below the panels, the title above; returns fig."""
    h, l = ax.get_legend_handles_labels()
    fig.legend(h, l, loc="lower center", ncol=min(len(l), ncol or len(l)), bbox_to_anchor=(0.5, y), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)



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


# ---------------------------------------------------------------- paper C (notebook 06): PTQ under LiRA
PTQ_COLORS = THEME["palette"]["ptq"]
PTQ_LABELS = {"full precision": "full precision", "rtn": "round-to-nearest", "adaround": "AdaRound", "brecq": "BRECQ",
              "obc": "OBC"}
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


# ---------------------------------------------------------------- paper D (notebook 07)

def net_color(kind: str, pool: str) -> str:
    pal = THEME["palette"]["net"]
    return pal["sew_avg"] if (kind == "sew" and pool == "avg") else pal.get(kind, "0.3")


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
            c = net_color(kind, pool)
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
                color=net_color(kind, pool), label=model)
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
        c = net_color(g.kind.iloc[0], g.pool.iloc[0])
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


# ---------------------------------------------------------------- 08: the attack ladder (papers A and B)

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
