"""Figures, drawn from results files (tidy frames), never from in-memory training state."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (files first; notebooks still show figures inline)
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

KIND_COLORS = {"ann": "#d95f02", "snn": "#1b9e77"}
DATASET_LABELS = {"mnist": "MNIST", "fmnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "iris": "Iris",
                  "breast_cancer": "Breast Cancer"}


def save(fig, path: str | Path) -> Path:
    """Write `fig` as PNG and PDF (same stem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path.with_suffix(".png"), dpi=130, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    return path


def label(dataset: str, source: str | None = None) -> str:
    """Dataset name for titles; the CIFAR-10 JPEG stand-in is always named as such."""
    if source and "stand-in" in source:
        return source
    return DATASET_LABELS.get(dataset, dataset)


def sample_grid(tensors: dict, n: int = 8, title: str = ""):
    """One training image of each of the first `n` classes, per image dataset (name -> lib.data.Tensors)."""
    names = [k for k, t in tensors.items() if t.family == "image"]
    fig, axes = plt.subplots(len(names), n, figsize=(n * 1.1, len(names) * 1.25), squeeze=False)
    for r, name in enumerate(names):
        t = tensors[name]
        lo, hi = t.intensity_range
        for c in range(n):
            i = int((t.y_train == c % t.n_classes).nonzero()[0])
            img = ((t.x_train[i] - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0)
            ax = axes[r, c]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"class {int(t.y_train[i])}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label(name, t.source).replace(" (", "\n("), fontsize=7)
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
                    sharex=False, height=2.4, aspect=1.2, col_wrap=3)
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


def learning_curves(curves: pd.DataFrame, title: str = ""):
    """Test accuracy (solid) and running train accuracy (dashed) per epoch, mean over seeds, ANN vs SNN."""
    long = curves.melt(id_vars=["dataset", "kind", "seed", "epoch"], value_vars=["train_acc", "test_acc"],
                       var_name="split", value_name="accuracy")
    long["accuracy"] *= 100
    g = sns.relplot(data=long, x="epoch", y="accuracy", hue="kind", style="split", col="dataset", kind="line",
                    palette=KIND_COLORS, col_wrap=3, height=2.6, aspect=1.2, facet_kws={"sharey": False},
                    errorbar="sd", markers=True, dashes={"test_acc": "", "train_acc": (3, 2)})
    g.set_axis_labels("epoch", "accuracy (%)")
    g.set_titles("{col_name}")
    g.figure.suptitle(title, y=1.03)
    return g.figure


def close(fig) -> None:
    plt.close(fig)

