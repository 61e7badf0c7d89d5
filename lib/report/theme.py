"""One theme for every figure (style, fonts, sizes, palettes) and the helpers every figure module shares: save,
close, dataset labels, the legend below a grid. Importing it selects matplotlib's Agg backend and applies the theme."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (files first: no figure is shown unless a cell returns or displays it)
import matplotlib.pyplot as plt
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


def _legend_below(fig, ax, title: str, y: float = -0.1, ncol: int | None = None):
    """One legend for the whole figure (from `ax`'s entries) below the panels, the title above; returns fig."""
    h, l = ax.get_legend_handles_labels()
    fig.legend(h, l, loc="lower center", ncol=min(len(l), ncol or len(l)), bbox_to_anchor=(0.5, y), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
