"""One theme for every figure (style, fonts, sizes, palettes) and the helpers every figure module shares: save,
show (a figure in a notebook, once, with alt text), describe (a figure's alt text from its own texts), close,
dataset labels, the legend below a grid. Importing it selects matplotlib's Agg backend and applies the theme."""
from __future__ import annotations

import base64
import io
import weakref
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (files first: no figure is shown unless a cell shows it; no second inline copy)
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.figure import Figure

_ALT: "weakref.WeakKeyDictionary[Figure, str]" = weakref.WeakKeyDictionary()   # the sentence `save`/`show` were given


def _png(fig) -> bytes:
    """The figure as the notebook shows it: PNG at the figure's own dpi (as IPython's inline backend draws it; the
    files `save` writes use THEME's dpi), cropped to its content."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buf.getvalue()


def _notebook_png() -> None:
    """Under Agg, IPython has no PNG formatter for figures: a notebook cell ending in `fig` (or display(fig)) would
    show only "<Figure size …>" — in JupyterLab and in papermill's executed copies alike. Register one that also
    gives the image its alt text (`alt_text`), so even a figure shown without `show` is described."""
    try:
        from IPython import get_ipython
        ip = get_ipython()
        if ip is not None:
            ip.display_formatter.formatters["image/png"].for_type(Figure, lambda f: (_png(f), {"alt": alt_text(f)}))
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
                "obc": "#d62728", "gptq": "#9467bd"},   # paper C's PTQ methods, our baseline and GPTQ
        "reference": "0.5",          # chance lines, zero lines
        "verdict": {"supported": "#1a9641", "partly supported": "#a6d96a", "mixed": "#ffffbf",
                    "partly contradicted": "#fdae61", "contradicted": "#d7191c", "not resolved": "#bdbdbd",
                    "scoped": "#c2a5cf", "structural": "#92c5de", "not tested": "#f0f0f0"},
        "net": {"sew": "#1b9e77", "sew_avg": "#66a61e", "spiking": "#7570b3", "ann": "#d95f02",
                "defended": "#e7298a"},   # paper D's nets
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


def save(fig, path: str | Path, alt: str | None = None) -> Path:
    """Write `fig` as PNG and PDF (same stem). `alt`: one sentence saying what the figure shows (not its numbers),
    kept for `show` and written with the automatic description (`alt_text`) into the PNG's "Description" field."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if alt:
        _ALT[fig] = alt
    fig.savefig(path.with_suffix(".png"), dpi=THEME["dpi"], bbox_inches="tight",
                metadata={"Description": alt_text(fig)})
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"CreationDate": None})   # no time stamp:
    return path                                                                  # the same figure, the same bytes


def show(fig, path: str | Path | None = None, alt: str | None = None) -> None:
    """Save `fig` (when `path` is given, as `save` does), show it in the notebook once — one display_data output whose
    image/png carries its alt text in the output's metadata ({"image/png": {"alt": …}}; its text/plain is the same
    text, for readers without images) — and close it. Returns nothing, so a cell ending in `show(...)` adds no
    second output. Outside IPython it only saves and closes."""
    if alt:
        _ALT[fig] = alt
    if path is not None:
        save(fig, path)
    try:
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is not None:
            text = alt_text(fig)
            display({"image/png": base64.b64encode(_png(fig)).decode("ascii"), "text/plain": text}, raw=True,
                    metadata={"image/png": {"alt": text}})
    except ImportError:
        pass
    close(fig)


def _texts(items) -> list[str]:
    """Each non-empty text once, in order, on one line."""
    out: list[str] = []
    for t in items:
        t = " ".join(str(t).split())
        if t and t not in out:
            out.append(t)
    return out


def _legend(lg) -> str:
    """A legend as "title: entry; entry" (or the entries alone)."""
    title = " ".join(lg.get_title().get_text().split())
    entries = "; ".join(_texts(t.get_text() for t in lg.get_texts()))
    return f"{title}: {entries}" if title and entries else title or entries


def _categories(axis) -> list[str]:
    """The tick labels of an axis that names categories (any label with a letter, not mathtext), else []."""
    labels = _texts(t.get_text() for t in axis.get_ticklabels())
    return labels if any(any(ch.isalpha() for ch in t) and "$" not in t for t in labels) else []


def describe(fig) -> str:
    """What `fig` shows, in words taken from the figure itself: its title (suptitle), its panels' titles, the x and y
    axis labels (and the categories of an axis whose ticks are names), the colour bars' labels and each legend (each
    distinct text once). The start of every figure's alt text."""
    axes = [ax for ax in fig.axes if ax.get_visible()]
    bars = [ax for ax in axes if hasattr(ax, "_colorbar")]
    panels = [ax for ax in axes if ax not in bars]
    legends = [lg for lg in (*fig.legends, *(ax.get_legend() for ax in panels)) if lg is not None]
    sup = " ".join((fig._suptitle.get_text() if fig._suptitle is not None else "").split())
    titles = _texts(ax.get_title(loc) for ax in panels for loc in ("left", "center", "right"))
    xs = _texts([*(ax.get_xlabel() for ax in panels), fig._supxlabel.get_text() if fig._supxlabel else ""])
    ys = _texts([*(ax.get_ylabel() for ax in panels), fig._supylabel.get_text() if fig._supylabel else ""])
    xcat = _texts(c for ax in panels for c in _categories(ax.xaxis))
    ycat = _texts(c for ax in panels for c in _categories(ax.yaxis))
    cbar = _texts(lab for ax in bars for lab in (ax.get_ylabel(), ax.get_xlabel()))
    n = len(panels)
    if n == 1 and not sup and titles:
        sup, titles = "; ".join(titles), []
    parts = [f"Figure: {sup.rstrip('.')}." if sup else "Figure."]
    if n > 1:
        parts.append(f"{n} panels" + (f", titled: {'; '.join(titles)}." if titles else "."))
    elif titles:
        parts.append(f"Panel: {'; '.join(titles)}.")
    for name, texts in (("X axis", xs), ("X axis categories", xcat), ("Y axis", ys), ("Y axis categories", ycat),
                        ("Colour scale", cbar)):
        if texts:
            parts.append(f"{name}: {'; '.join(texts)}.")
    parts += [f"Legend: {t}." for t in _texts(_legend(lg) for lg in legends)]
    return " ".join(parts)


def alt_text(fig) -> str:
    """The figure's alt text: the sentence given to `save`/`show` (if any), then `describe(fig)`."""
    sentence = _ALT.get(fig, "").strip()
    return (sentence + " " if sentence else "") + describe(fig)


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
