"""Membership inference attacks: the shadow-model SVM attack of paper A §III-B and a loss threshold.

Shadow-model attack (Shokri et al. 2017, as used in paper A):

    attack train  = { (f_shadow(x), 1) : x ∈ shadow-in } ∪ { (f_shadow(x), 0) : x ∈ shadow-out }
    attack test   = { (f_target(x), 1) : x ∈ target-in } ∪ { (f_target(x), 0) : x ∈ target-out }
    score(x)      = SVM_RBF.decision_function(f_target(x))         (higher ⇒ more likely IN)

f(x) is an [N, C] float array: ANN logits or SNN final-step output membrane potentials.
Both sets are balanced by undersampling the majority class (seeded), so chance AUC is 0.5.
mode="single": one SVM (the paper). mode="per_class": one SVM per true class label (the authors'
earlier code); each test example is scored by its class's SVM.

Loss-threshold attack (Yeom et al. 2018): score(x) = -ℓ(f_target(x), y), members have lower loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..claims.metrics import auc_ci as _auc_ci
from ..claims.metrics import auc_se_hanley, low_fpr_row, tpr_at_fpr_detail

MODES = ("single", "per_class")
MIN_PER_SIDE = 2   # an SVM trained on fewer than 2 IN or 2 OUT examples is not a model of anything


@dataclass
class AttackResult:
    """Metrics of one attack plus its per-example scores on the (balanced) attack test set.

    Test example k is row `index[k]` of target_in (pool[k] == "in") or target_out (pool[k] == "out").
    """
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_1pct: float
    tpr_at_0_1pct: float
    n_train_in: int
    n_train_out: int
    n_test_in: int
    n_test_out: int
    mode: str
    scores: np.ndarray
    membership: np.ndarray
    pool: np.ndarray
    index: np.ndarray
    labels: np.ndarray | None = None
    per_class_auc: dict = field(default_factory=dict)
    fallback_classes: list = field(default_factory=list)
    tpr_details: dict = field(default_factory=dict)   # FPR → lib.claims.metrics.tpr_at_fpr_detail (ties)

    def to_row(self) -> dict:
        """Scalar metrics as a flat dict: one row of a tidy results CSV."""
        return {
            "mode": self.mode,
            "auc": self.auc,
            "auc_ci_low": self.auc_ci[0],
            "auc_ci_high": self.auc_ci[1],
            "auc_se_hanley": auc_se_hanley(self.auc, self.n_test_in, self.n_test_out),
            # a TPR the non-member count cannot resolve is not a number (lib.claims.metrics.low_fpr_row);
            # chance = what a random score reaches at the operating point this N⁻ allows
            **low_fpr_row({f: self.tpr_details.get(f, t) for f, t in ((0.01, self.tpr_at_1pct),
                                                                       (0.001, self.tpr_at_0_1pct))}, self.n_test_out),
            "n_train_in": self.n_train_in,
            "n_train_out": self.n_train_out,
            "n_test_in": self.n_test_in,
            "n_test_out": self.n_test_out,
            "n_fallback_classes": len(self.fallback_classes),
        }

    def scores_frame(self) -> pd.DataFrame:
        """One row per attack-test example: pool, index, label (class; NA if unknown), membership, score."""
        labels = pd.array([pd.NA] * len(self.scores), dtype="Int64") if self.labels is None else self.labels
        return pd.DataFrame({"pool": self.pool, "index": self.index, "label": labels,
                             "membership": self.membership, "score": self.scores})

    def per_class_frame(self) -> pd.DataFrame:
        """per_class_auc as a table (class, auc, fallback); empty unless mode == "per_class"."""
        return pd.DataFrame({"class": list(self.per_class_auc), "auc": list(self.per_class_auc.values()),
                             "fallback": [c in self.fallback_classes for c in self.per_class_auc]})


# ----------------------------------------------------------------------------- input checks

def _features(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, C] of model outputs, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _labels(y, n: int, name: str) -> np.ndarray | None:
    if y is None:
        return None
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must be 1-D with one label per row ({n}), got shape {y.shape}")
    return y


def _losses(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-example losses, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return x


# ----------------------------------------------------------------------------- sampling

def balanced_indices(n_in: int, n_out: int, rng: np.random.Generator, n_max: int | None = None):
    """Undersample: k = min(n_in, n_out, n_max) indices drawn without replacement from each side
    (sorted, so outputs keep their original order)."""
    k = min(n_in, n_out) if n_max is None else min(n_in, n_out, n_max)
    return (np.sort(rng.choice(n_in, size=k, replace=False)),
            np.sort(rng.choice(n_out, size=k, replace=False)))


def _water_fill(available: np.ndarray, budget: int) -> np.ndarray:
    """Split `budget` as evenly as possible over classes, none getting more than it has: a class
    below its share keeps all of its examples and the rest is re-shared among the others."""
    alloc = np.zeros(len(available), dtype=np.int64)
    left = int(budget)
    for rank, i in enumerate(np.argsort(available, kind="stable")):
        alloc[i] = min(int(available[i]), left // (len(available) - rank))
        left -= alloc[i]
    return alloc


# ----------------------------------------------------------------------------- attack model

def _fit_svm(x_in: np.ndarray, x_out: np.ndarray, standardize: bool):
    """RBF SVM on IN (1) vs OUT (0). The scaler sits inside the pipeline so it is fit on attack
    training data only and applied unchanged to the target's outputs."""
    x = np.concatenate([x_in, x_out])
    y = np.concatenate([np.ones(len(x_in), dtype=np.int64), np.zeros(len(x_out), dtype=np.int64)])
    # No probability calibration (sklearn ≥ 1.9 deprecates the `probability` flag): the score is the
    # decision function, and ROC metrics only need its ordering.
    svm = SVC(kernel="rbf")
    model = make_pipeline(StandardScaler(), svm) if standardize else svm
    return model.fit(x, y)


def _result(scores, membership, pool, index, labels, *, mode, n_train_in, n_train_out, seed, n_boot,
            per_class_auc=None, fallback_classes=None) -> AttackResult:
    ci = _auc_ci(membership, scores, n_boot=n_boot, seed=seed) if n_boot > 0 else (float("nan"),) * 2
    det = {f: tpr_at_fpr_detail(membership, scores, f) for f in (0.01, 0.001)}
    return AttackResult(
        auc=float(roc_auc_score(membership, scores)), auc_ci=ci,
        tpr_at_1pct=det[0.01]["tpr"], tpr_at_0_1pct=det[0.001]["tpr"], tpr_details=det,
        n_train_in=int(n_train_in), n_train_out=int(n_train_out),
        n_test_in=int(membership.sum()), n_test_out=int(len(membership) - membership.sum()),
        mode=mode, scores=scores, membership=membership, pool=pool, index=index, labels=labels,
        per_class_auc=per_class_auc or {}, fallback_classes=fallback_classes or [])


def _test_set(t_in, t_out, picks_in, picks_out, in_labels, out_labels):
    """Stack the chosen target rows: features, membership, pool, index, labels."""
    x = np.concatenate([t_in[picks_in], t_out[picks_out]])
    membership = np.concatenate([np.ones(len(picks_in), np.int64), np.zeros(len(picks_out), np.int64)])
    pool = np.array(["in"] * len(picks_in) + ["out"] * len(picks_out), dtype=object)
    index = np.concatenate([picks_in, picks_out]).astype(np.int64)
    labels = None
    if in_labels is not None and out_labels is not None:
        labels = np.concatenate([in_labels[picks_in], out_labels[picks_out]])
    return x, membership, pool, index, labels


def shadow_attack(shadow_in, shadow_out, target_in, target_out, *, shadow_in_labels=None, shadow_out_labels=None,
                  target_in_labels=None, target_out_labels=None, mode: str = "single", max_train: int = 5000,
                  standardize: bool = True, seed: int = 0, n_boot: int = 1000) -> AttackResult:
    """Shadow-model membership inference with an RBF SVM (paper A §III-B).

    1. Balance the attack test set (target-in vs target-out) by undersampling the majority side.
    2. Balance the attack training set (shadow-in vs shadow-out) the same way and cap it at
       `max_train` examples in total (an RBF SVM costs O(n²)–O(n³) in n training examples).
    3. Fit SVC(kernel="rbf") (after a StandardScaler fit on attack training data if `standardize`)
       and score every attack-test example with decision_function.
    4. AUC (sklearn), bootstrap CI (`n_boot` stratified resamples; 0 skips it), TPR at 1% / 0.1% FPR.

    mode="per_class": needs all four label arrays. Balancing is done within each class (test: every
    class keeps min(#IN, #OUT) of each side; training: `max_train` is still the total over all SVMs,
    shared evenly over classes, see `_water_fill`). One SVM per class; the reported AUC is pooled
    over all test scores (scores of different SVMs are not calibrated against each other, so it can
    sit below the per-class AUCs) and `per_class_auc` holds each class's own AUC (nan when that class
    has no IN or no OUT test example). A class with fewer than 2 IN or 2 OUT training examples gets
    no SVM of its own: its test examples are scored by one fallback SVM trained on the union of all
    classes' training examples, and it is listed in `fallback_classes`.

    `seed` drives all sampling (numpy Generator) and the bootstrap; the SVM itself is deterministic.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if int(max_train) < 2 * MIN_PER_SIDE:
        raise ValueError(f"max_train must be >= {2 * MIN_PER_SIDE} (at least {MIN_PER_SIDE} IN and OUT), got {max_train}")
    if int(n_boot) < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    s_in, s_out = _features(shadow_in, "shadow_in"), _features(shadow_out, "shadow_out")
    t_in, t_out = _features(target_in, "target_in"), _features(target_out, "target_out")
    widths = {a.shape[1] for a in (s_in, s_out, t_in, t_out)}
    if len(widths) != 1:
        raise ValueError(f"shadow_in, shadow_out, target_in, target_out must have the same number of columns, "
                         f"got {s_in.shape[1]}, {s_out.shape[1]}, {t_in.shape[1]}, {t_out.shape[1]}")
    ys_in = _labels(shadow_in_labels, len(s_in), "shadow_in_labels")
    ys_out = _labels(shadow_out_labels, len(s_out), "shadow_out_labels")
    yt_in = _labels(target_in_labels, len(t_in), "target_in_labels")
    yt_out = _labels(target_out_labels, len(t_out), "target_out_labels")
    rng = np.random.default_rng(seed)

    if mode == "single":
        te_in, te_out = balanced_indices(len(t_in), len(t_out), rng)
        tr_in, tr_out = balanced_indices(len(s_in), len(s_out), rng, int(max_train) // 2)
        if len(tr_in) < MIN_PER_SIDE:
            raise ValueError(f"shadow_in and shadow_out need at least {MIN_PER_SIDE} rows each, "
                             f"got {len(s_in)} and {len(s_out)}")
        model = _fit_svm(s_in[tr_in], s_out[tr_out], standardize)
        x, membership, pool, index, labels = _test_set(t_in, t_out, te_in, te_out, yt_in, yt_out)
        scores = model.decision_function(x).astype(np.float64)
        return _result(scores, membership, pool, index, labels, mode=mode, n_train_in=len(tr_in),
                       n_train_out=len(tr_out), seed=seed, n_boot=n_boot)

    missing = [n for n, y in [("shadow_in_labels", ys_in), ("shadow_out_labels", ys_out),
                              ("target_in_labels", yt_in), ("target_out_labels", yt_out)] if y is None]
    if missing:
        raise ValueError(f'mode="per_class" needs the true class of every example; missing: {", ".join(missing)}')
    classes = np.unique(np.concatenate([ys_in, ys_out, yt_in, yt_out]))

    # Test set: balance within each class, so every per-class AUC and the pooled AUC have chance 0.5.
    te_in, te_out = [], []
    for c in classes:
        rows_in, rows_out = np.flatnonzero(yt_in == c), np.flatnonzero(yt_out == c)
        pick_in, pick_out = balanced_indices(len(rows_in), len(rows_out), rng)
        te_in.append(rows_in[pick_in])
        te_out.append(rows_out[pick_out])
    te_in, te_out = np.sort(np.concatenate(te_in)), np.sort(np.concatenate(te_out))
    if len(te_in) == 0:
        raise ValueError("no class has both target_in and target_out examples; per_class mode has nothing to test")

    # Training set: balance within each class, total capped at max_train over all class SVMs.
    available = np.array([min(np.sum(ys_in == c), np.sum(ys_out == c)) for c in classes])
    alloc = _water_fill(available, int(max_train) // 2)
    train = {}
    for c, k in zip(classes, alloc):
        rows_in, rows_out = np.flatnonzero(ys_in == c), np.flatnonzero(ys_out == c)
        pick_in, pick_out = balanced_indices(len(rows_in), len(rows_out), rng, int(k))
        train[c] = (rows_in[pick_in], rows_out[pick_out])

    x, membership, pool, index, labels = _test_set(t_in, t_out, te_in, te_out, yt_in, yt_out)
    scores = np.empty(len(x))
    fallback, fallback_model = [], None
    for c in classes:
        at = labels == c
        if not at.any():
            continue
        tr_in, tr_out = train[c]
        if len(tr_in) >= MIN_PER_SIDE:
            model = _fit_svm(s_in[tr_in], s_out[tr_out], standardize)
        else:
            fallback.append(c.item())
            if fallback_model is None:
                all_in = np.concatenate([t[0] for t in train.values()])
                all_out = np.concatenate([t[1] for t in train.values()])
                if len(all_in) < MIN_PER_SIDE:
                    raise ValueError(f"too few shadow examples for any attack SVM: need at least {MIN_PER_SIDE} "
                                     f"shadow_in and shadow_out rows of matching classes")
                fallback_model = _fit_svm(s_in[all_in], s_out[all_out], standardize)
            model = fallback_model
        scores[at] = model.decision_function(x[at])

    per_class_auc = {}
    for c in classes:
        at = labels == c
        both = at.any() and 0 < membership[at].sum() < at.sum()
        per_class_auc[c.item()] = float(roc_auc_score(membership[at], scores[at])) if both else float("nan")
    n_train = int(sum(len(t[0]) for t in train.values()))
    return _result(scores, membership, pool, index, labels, mode=mode, n_train_in=n_train, n_train_out=n_train,
                   seed=seed, n_boot=n_boot, per_class_auc=per_class_auc, fallback_classes=fallback)


def loss_threshold_attack(target_in_loss, target_out_loss, *, target_in_labels=None, target_out_labels=None,
                          seed: int = 0, n_boot: int = 1000) -> AttackResult:
    """Yeom et al. (2018) baseline: score = -loss (members were fit, so their loss is lower).
    The attack test set is balanced by undersampling as in `shadow_attack`; there is no training
    set (every threshold is an operating point of the ROC), so n_train_in = n_train_out = 0."""
    if int(n_boot) < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    l_in, l_out = _losses(target_in_loss, "target_in_loss"), _losses(target_out_loss, "target_out_loss")
    y_in = _labels(target_in_labels, len(l_in), "target_in_labels")
    y_out = _labels(target_out_labels, len(l_out), "target_out_labels")
    rng = np.random.default_rng(seed)
    te_in, te_out = balanced_indices(len(l_in), len(l_out), rng)
    neg_loss, membership, pool, index, labels = _test_set(-l_in[:, None], -l_out[:, None], te_in, te_out, y_in, y_out)
    return _result(neg_loss[:, 0], membership, pool, index, labels, mode="loss_threshold",
                   n_train_in=0, n_train_out=0, seed=seed, n_boot=n_boot)


def per_example_loss(outputs, labels) -> np.ndarray:
    """Cross-entropy of each row of `outputs` [N, C] (treated as logits) with its label:
    ℓ_i = logsumexp_c(z_ic) - z_{i,y_i}, in float64. Accepts numpy arrays or torch tensors."""
    z = _features(outputs, "outputs")
    y = _labels(labels, len(z), "labels")
    if y is None:
        raise ValueError("labels must be given")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be in [0, {z.shape[1] - 1}] (outputs has {z.shape[1]} columns), "
                         f"got range [{y.min()}, {y.max()}]")
    return logsumexp(z, axis=1) - z[np.arange(len(z)), y]
