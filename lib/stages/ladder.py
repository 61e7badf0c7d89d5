"""Papers A and B in a leakage regime, under a ladder of membership attacks (notebook 08_attack_ladder).

The regime (params.yaml → 08_attack_ladder, named by `regime`): per dataset a *population* of N training examples
(2 × `members`, a stratified sample of the training part; the whole training part for the tables) and a keep matrix
[M, N] (lib.attacks.lira.keep_matrix: every example IN exactly ⌊M/2⌋ of the M models). Model m of every setting
trains on population[keep[m]] for the regime's epochs, so all settings of a dataset share their member sets: target
m of setting a and target m of setting b are paired on `target`. Each model is in turn the target, the others are
its shadows / references (leave-one-out), so M models give M paired targets. Test examples (`population_test`)
give the test accuracy and RMIA's population z (never anyone's member).

The ladder, in the order the results list it (attack names as in the tables):

    SVM (paper A)       paper A §III-B: an RBF SVM on a shadow's outputs (ANN logits, SNN output membrane), IN =
                        the shadow's members, OUT = its non-members; then scores the target's. The shadow of target
                        m is model (m + 1) mod M: an independent random half of the population, its own init.
    loss                Yeom et al. 2018: −cross-entropy of the target's output (no shadow).
    LiRA offline        Carlini et al. 2022, fixed variance, the OUT references only.
    LiRA online         the same with IN and OUT references.
    RMIA                Zarifzadeh et al. 2024, offline, ml_privacy_meter's computation (lira.rmia_member_scores),
                        the other models as references: k = the balanced OUT count of OUT references per example and
                        no IN reference (the paper's offline RMIA, and 06's; with k = 1, ml_privacy_meter's library
                        would convert the IN references' signals as (p + a − 1)/a, which can be negative: on the quick
                        CIFAR-10 stand-in that estimator gave the SNN's pooled RMIA AUC 0.61 against 0.79 with OUT
                        references only).
                        LiRA and RMIA use the same number of IN (and of OUT) references for every example
                        (lira.balanced_references), so that a reference count never reveals the target's membership
                        (ml_privacy_meter's own reference choice, the k largest OUT signals or with k = 1 all of
                        them, leans on the target's membership in leave-one-out: lira.rmia_member_scores).
    SVM (as published)  (a switch row, not a rung) the SVM with the authors' earlier shadow: trained on a random
                        `00_data.shadow_member_fraction` of the TARGET's members and `shadow_nonmember_fraction` of
                        its non-members (lib.core.data.make_split's as_published mode, here within the population).

Per target and attack: AUC with its Hanley SE, and the TPR at the lowest FPR the non-member count resolves
(lib.claims.metrics: ≥ 10 false positives allowed) with its binomial SE; the train−test gap of the target beside.
"""
from __future__ import annotations

from functools import partial

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import config as C
from ..core import data as D
from ..core.config import ConfigError
from ..attacks import lira as L
from ..claims import metrics as M
from ..attacks import mia
from ..claims import verdicts as V
from .ladder_params import Params  # noqa: F401 (the section: lib.stages.ladder.Params)
from .ladder_tables import (AS_PUBLISHED, LADDER, SWITCHES, fpr_label, reading, summary,  # noqa: F401 (notebook 08)
                            svm_vs_strongest, switch_table, verdict_grid)

# the FPRs a low-FPR TPR may be read at; the lowest one the per-target non-member count resolves is reported
FPR_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Setting:
    """One model configuration of the ladder: `id` (params.yaml key, used by claims), kind, the datasets it is trained
    on and its lib.core.config.unit overrides (lr from train.lr of another kind, weight bits, encoding, surrogate)."""
    id: str
    kind: str
    datasets: tuple
    label: str
    overrides: dict = field(default_factory=dict, compare=False)

    def columns(self) -> dict:
        o = self.overrides
        return {"setting": self.id, "label": self.label, "kind": self.kind, "lr": o.get("lr"),
                "weight_bits": o.get("weight_bits"), "encoding": o.get("encoding"), "surrogate": o.get("surrogate")}


def settings(params: dict, sec: Params) -> list[Setting]:
    """The section's settings as Setting objects, in params.yaml order (lr: train.lr of the kind `lr` names, else
    of its own kind)."""
    out = []
    for spec in sec.settings:
        ov = {"lr": float(params["train"]["lr"][spec.lr or spec.kind])}
        for k in ("weight_bits", "encoding", "surrogate"):
            if getattr(spec, k) is not None:
                ov[k] = getattr(spec, k)
        out.append(Setting(spec.id, spec.kind, tuple(spec.datasets), spec.label or spec.id, ov))
    return out


def datasets(sets: list[Setting]) -> list[str]:
    return list(dict.fromkeys(ds for s in sets for ds in s.datasets))


# ----------------------------------------------------------------------------- the regime's population

@dataclass
class Population:
    """One dataset's population: training-set indices [N] and labels, the keep matrix [M, N], test indices [P]."""
    dataset: str
    index: np.ndarray
    y: np.ndarray
    keep: np.ndarray
    test_index: np.ndarray
    y_test: np.ndarray
    seed: int

    @property
    def n_models(self) -> int:
        return len(self.keep)

    def key(self, regime: str) -> dict:
        """What makes a model of this population (enters every unit, hence its checkpoint key)."""
        return {"regime": regime, "size": int(len(self.index)), "models": self.n_models, "seed": self.seed,
                "test": int(len(self.test_index))}


def _take(labels: np.ndarray, n: int | None, seed: int, key: str) -> np.ndarray:
    """A stratified random sample of n indices (data._stratified_take; all, in order, when n is None); more than the
    set holds is an error naming `key`."""
    if n is not None and n > len(labels):
        raise ConfigError(f"params.yaml: `{key}` asks for {n} examples but the set has only {len(labels)}")
    return D._stratified_take(np.arange(len(labels)), labels, n, seed)


def population(data: D.Tensors, sec: Params, dataset: str) -> Population:
    """The dataset's population under the section's regime (at the active scale)."""
    fam, seed = C.family(dataset), int(sec.seed)
    members = sec.members.of(fam)
    y = data.y_train.numpy()
    idx = _take(y, None if members is None else 2 * int(members), seed, f"08_attack_ladder.members.{fam}")
    yt = data.y_test.numpy()
    tidx = _take(yt, sec.population_test.of(fam), seed + 1, f"08_attack_ladder.population_test.{fam}")
    keep = L.keep_matrix(int(sec.models.of(fam)), len(idx), seed)
    return Population(dataset, idx, y[idx], keep, tidx, yt[tidx], seed)


def _as_published_pools(pop: Population, m: int, fractions) -> tuple[np.ndarray, np.ndarray]:
    """The authors' earlier shadow for target m: a random fraction of its members and of its non-members."""
    rng = np.random.default_rng([pop.seed, m])
    pick = lambda idx, f: np.sort(rng.choice(idx, size=max(2, round(f * len(idx))), replace=False))  # noqa: E731
    return pick(np.flatnonzero(pop.keep[m]), fractions[0]), pick(np.flatnonzero(~pop.keep[m]), fractions[1])


def split(pop: Population, m: int, as_published=None) -> dict:
    """The split file of model m (or, with `as_published` = (member, non-member) fractions, of target m's as-published
    shadow): target_in / target_out = positions of the population (training-set indices), eval = the test sample."""
    if as_published is None:
        pin, pout = np.flatnonzero(pop.keep[m]), np.flatnonzero(~pop.keep[m])
    else:
        pin, pout = _as_published_pools(pop, m, as_published)
    return {"seed": m, "mode": "ladder" if as_published is None else "ladder_as_published",
            "n_in": int(len(pin)), "n_out": int(len(pout)), "dataset": pop.dataset,
            "source": {"target_in": "train", "target_out": "train", "eval": "test"},
            "pools": {"target_in": pop.index[pin].tolist(), "target_out": pop.index[pout].tolist(),
                      "eval": pop.test_index.tolist()}}


def write_splits(pop: Population, splits_dir: str | Path, as_published=None) -> None:
    """Split files seed<m>.json of the M models (and seed<M + m>.json of the as-published shadows)."""
    for m in range(pop.n_models):
        D.save_split(split(pop, m), D.split_path(splits_dir, pop.dataset, m))
        if as_published is not None:
            D.save_split(split(pop, m, as_published), D.split_path(splits_dir, pop.dataset, pop.n_models + m))


def units(params: dict, sec: Params, st: Setting, pop: Population, as_published=None) -> list[dict]:
    """The M units of a setting on pop's dataset (or, with `as_published` fractions, their as-published shadows).
    Model m is initialized and shuffled with seed·1000 + m (a shadow: + train.shadow_seed_offset)."""
    fam, M_ = C.family(pop.dataset), pop.n_models
    out = []
    for m in range(M_):
        sp = split(pop, m, as_published)
        u = C.unit(params, pop.dataset, st.kind, "target", m if as_published is None else M_ + m,
                   epochs=int(sec.epochs.of(fam)), batch_size=int(sec.batch_size.of(fam)),
                   n_in=sp["n_in"], n_out=sp["n_out"], **st.overrides)
        u["init_seed"] = int(sec.seed) * 1000 + m + (0 if as_published is None else
                                                        int(params["train"]["shadow_seed_offset"]))
        u["population"] = {**pop.key(sec.regime), **({} if as_published is None else
                                                         {"as_published_of": m, "fractions": list(as_published)})}
        out.append(u)
    return out


# ----------------------------------------------------------------------------- outputs of the trained models

@dataclass
class Outputs:
    """One setting's M models on one population: logits [M, N, C] in population order, on the test sample [M, P, C],
    train / test accuracy (%) and checkpoint keys; `shadows`: the as-published shadows' (in, out) logits."""
    logits: np.ndarray
    test_logits: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    keys: list
    shadows: list | None = None


def outputs(records: list[dict], pop: Population, shadow_records: list[dict] | None = None) -> Outputs:
    """Assemble the records (ModelStore) of a setting's M models (in model order) into population order."""
    logits, test = [], []
    for m, rec in enumerate(records):
        p = rec["pools"]
        z = np.empty((len(pop.index), p["in"]["outputs"].shape[1]), np.float32)
        z[pop.keep[m]], z[~pop.keep[m]] = p["in"]["outputs"], p["out"]["outputs"]
        logits.append(z)
        test.append(p["eval"]["outputs"])
    sh = None if shadow_records is None else [(r["pools"]["in"]["outputs"], r["pools"]["out"]["outputs"])
                                              for r in shadow_records]
    return Outputs(np.stack(logits), np.stack(test), 100 * np.array([r["train_acc"] for r in records]),
                   100 * np.array([r["test_acc"] for r in records]), [r["key"] for r in records], sh)


# ----------------------------------------------------------------------------- the ladder

def low_fpr(n_nonmembers: int, grid=FPR_GRID) -> float:
    """The lowest FPR of `grid` that n non-members resolve (≥ metrics.MIN_FALSE_POSITIVES false positives); the
    largest of the grid when none is resolvable (its TPR is then NaN, lib.claims.metrics.low_fpr_row)."""
    ok = [f for f in grid if M.tpr_resolvable(f, n_nonmembers)]
    return min(ok) if ok else max(grid)


def attack(out: Outputs, pop: Population, sec: Params, attack_params: dict, fractions=None) -> list[dict]:
    """Every rung of the ladder on every target m (and the as-published SVM where out.shadows exist; `fractions` =
    00_data's shadow_member_fraction, shadow_nonmember_fraction that made them): one entry per (target, attack)
    with the member scores and the truth (for pooling). `attack_params`: params.yaml → attack (the SVM's)."""
    keep, y, M_ = pop.keep, pop.y, pop.n_models
    lir = sec.lira
    lira_scores = np.stack([L.scores_from_logits(z, y) for z in out.logits])             # [M, N, 1]
    losses = np.stack([mia.per_example_loss(z, y) for z in out.logits])                 # [M, N]
    sig_x = L.rmia_signal(out.logits[:, :, None, :], y)                                 # [M, N]
    sig_z = L.rmia_signal(out.test_logits[:, :, None, :], pop.y_test)                   # [M, P]
    svm_kw = dict(mode=attack_params["mode"], max_train=attack_params["max_train"],
                  standardize=attack_params["standardize"], n_boot=0)
    entries = []
    for m in range(M_):
        rest = np.arange(M_) != m
        t_in, t_out = out.logits[m][keep[m]], out.logits[m][~keep[m]]
        s = (m + 1) % M_
        res = mia.shadow_attack(out.logits[s][keep[s]], out.logits[s][~keep[s]], t_in, t_out,
                                shadow_in_labels=y[keep[s]], shadow_out_labels=y[~keep[s]],
                                target_in_labels=y[keep[m]], target_out_labels=y[~keep[m]], seed=pop.seed + m, **svm_kw)
        entries.append({"target": m, "attack": "SVM (paper A)", "scores": res.scores, "truth": res.membership,
                        "example": _positions(res, keep[m])})
        if out.shadows is not None:
            a_in, a_out = _as_published_pools(pop, m, fractions)
            sh_in, sh_out = out.shadows[m]
            res = mia.shadow_attack(sh_in, sh_out, t_in, t_out, shadow_in_labels=y[a_in], shadow_out_labels=y[a_out],
                                    target_in_labels=y[keep[m]], target_out_labels=y[~keep[m]], seed=pop.seed + m,
                                    **svm_kw)
            entries.append({"target": m, "attack": AS_PUBLISHED, "scores": res.scores, "truth": res.membership,
                            "example": _positions(res, keep[m])})
        entries.append({"target": m, "attack": "loss", "scores": -losses[m], "truth": keep[m]})
        # the same number of IN and of OUT references for every example (lira.balanced_references: with few models,
        # leave-one-out otherwise gives members fewer IN references than non-members, a bias towards "OUT")
        use = L.balanced_references(keep[rest])
        refs = np.where(use[..., None], lira_scores[rest], np.nan)
        for name, online in (("LiRA offline", False), ("LiRA online", True)):
            atk = L.LiRA(online=online, fix_variance=lir.fix_variance, variant=lir.variant)
            entries.append({"target": m, "attack": name, "truth": keep[m],
                            "scores": atk.member_scores(refs, keep[rest], lira_scores[m])})
        r = sec.rmia
        entries.append({"target": m, "attack": "RMIA", "truth": keep[m], "scores": L.rmia_member_scores(
            sig_x[m], sig_x[rest], keep[rest], sig_z[m], sig_z[rest], offline_a=r.offline_a, gamma=r.gamma,
            max_refs=int((~keep[rest]).sum(0).min()), ref_use=L.balanced_references(keep[rest], k_in=0))})
    for e in entries:
        e.setdefault("example", np.arange(len(e["truth"])))   # population positions, the same for every setting
    return entries


def _positions(res, keep_m: np.ndarray) -> np.ndarray:
    """Population positions of an SVM's attack-test examples (its `pool` / `index` point into the target's IN and
    OUT rows)."""
    pos = np.empty(len(res.index), np.int64)
    for side, rows in (("in", np.where(keep_m)[0]), ("out", np.where(~keep_m)[0])):
        m = res.pool == side
        pos[m] = rows[res.index[m]]
    return pos


def row(scores, truth, fpr: float, groups=None, boot: dict | None = None) -> dict:
    """AUC (Hanley SE, normal 95% interval) and TPR at `fpr` (tie-aware; bootstrap SE over members and non-members,
    and over `groups` (targets) when pooled; chance level; status, e.g. a tie that covers `fpr`) of one attack.
    `boot`: params.yaml → verdicts.bootstrap."""
    b = boot or {"n_boot": 200, "seed": 0}
    r = L.metrics_row(scores, truth, [fpr], groups=groups, n_boot=b["n_boot"], seed=b["seed"])
    tag = f"tpr_at_{100 * fpr:g}pct".replace(".", "_")
    se = M.auc_se_hanley(r["auc"], r["n_members"], r["n_nonmembers"])
    return {"auc": r["auc"], "auc_se_hanley": se, "auc_ci_low": r["auc"] - 1.96 * se, "auc_ci_high": r["auc"] + 1.96 * se,
            "fpr_low": fpr, "tpr_low": r[tag], "tpr_low_se": r[f"{tag}_se"], "tpr_low_chance": r[f"{tag}_chance"],
            "tpr_low_status": r[f"{tag}_status"], "tpr_low_below_chance": r[f"{tag}_below_chance"],
            "n_members": r["n_members"], "n_nonmembers": r["n_nonmembers"], "n_dropped": r["n_dropped"]}


def tables(entries: list[dict], base: dict, out: Outputs, fpr: float, y_test=None, boot: dict | None = None):
    """(per-target rows, pooled rows, pooled ROC, per-example outcomes) of one setting on one dataset. `base`: the
    configuration columns. Pooled = the member scores of every target concatenated (N⁻ × M non-members). The
    outcomes (lib.claims.verdicts.Examples): per per-target row (`examples` id) its attack's score and membership
    of every attacked population position, with the row's FPR, and (with `y_test`) the target's correctness on
    every test example."""
    per, pooled, roc, ex = [], [], [], []
    for e in entries:
        m = e["target"]
        ex_id = f"{base['dataset']}|{base['setting']}|{m}|{e['attack']}"
        per.append({**base, "target": m, "attack": e["attack"], "train_acc": out.train_acc[m],
                    "test_acc": out.test_acc[m], "gap": out.train_acc[m] - out.test_acc[m],
                    **row(e["scores"], e["truth"], fpr, boot=boot), "key": out.keys[m], "examples": ex_id})
        ex.append(pd.DataFrame({"id": ex_id, "measure": "attack", "example": e["example"],
                                "member": np.asarray(e["truth"]).astype(np.int8), "score": e["scores"], "fpr": fpr}))
        if y_test is not None:
            ex.append(pd.DataFrame({"id": ex_id, "measure": "eval", "example": -(np.arange(len(y_test)) + 1),
                                    "correct": (out.test_logits[m].argmax(1) == np.asarray(y_test)).astype(np.int8)}))
    for name in dict.fromkeys(e["attack"] for e in entries):
        es = [e for e in entries if e["attack"] == name]
        sc = np.concatenate([e["scores"] for e in es])
        tr = np.concatenate([e["truth"] for e in es])
        who = np.concatenate([np.full(len(e["truth"]), e["target"]) for e in es])
        n_neg = int((~tr.astype(bool)).sum())
        pooled.append({**base, "attack": name, "targets": len(es), "train_acc": float(out.train_acc.mean()),
                       "test_acc": float(out.test_acc.mean()), "gap": float((out.train_acc - out.test_acc).mean()),
                       **row(sc, tr, low_fpr(n_neg), groups=who, boot=boot)})
        roc.append(L.roc_loglog(sc, tr, n_points=150).assign(**base, attack=name))
    return pd.DataFrame(per), pd.DataFrame(pooled), pd.concat(roc, ignore_index=True), pd.concat(ex, ignore_index=True)


# the metric columns of the per-target table, from its per-example outcomes (lib.claims.verdicts); tpr_low is read
# at each row's own FPR (the examples' `fpr` column)
OUTCOMES = {"auc": V.Outcome("attack", "auc"), "tpr_low": V.Outcome("attack", "tpr"),
            "test_acc": V.Outcome("eval", "accuracy", scale=100.0)}


# examples_of(frame, params): a stage's examples.csv.gz as lib.claims.verdicts.Examples with this module's OUTCOMES
examples_of = partial(V.Examples.of, outcomes=OUTCOMES)


# ----------------------------------------------------------------------------- the stage: plan, train, attack

def splits_dir(sec: Params) -> Path:
    return Path(sec.checkpoints_dir) / "splits"


def fractions(params: dict) -> tuple[float, float]:
    """The as-published shadow's (member, non-member) fractions: 00_data's (one source of truth)."""
    d = params["00_data"]
    return float(d["shadow_member_fraction"]), float(d["shadow_nonmember_fraction"])


def plan(params: dict, sec: Params, loader) -> tuple[dict, list[dict]]:
    """Populations (their split files written to splits_dir(sec)) and jobs: one per (setting, dataset) with its M
    units and, where `as_published` asks for them, the M as-published shadows' units."""
    sets, ap = settings(params, sec), sec.as_published
    pops = {}
    for ds in datasets(sets):
        pops[ds] = population(loader(ds), sec, ds)
        write_splits(pops[ds], splits_dir(sec), fractions(params) if ds in ap.datasets else None)
    jobs = []
    for st in sets:
        for ds in st.datasets:
            with_ap = st.id in ap.settings and ds in ap.datasets
            jobs.append({"setting": st, "dataset": ds, "units": units(params, sec, st, pops[ds]),
                         "shadows": units(params, sec, st, pops[ds], fractions(params)) if with_ap else []})
    return pops, jobs


def run(params: dict, sec: Params, store, pops: dict, jobs: list[dict], progress: bool = True):
    """Train (or load) every job's models, attack each target with every rung. Returns (per-target rows, pooled rows,
    pooled ROC curves, one row per trained model, per-example outcomes of every per-target row)."""
    from ..core.progress import tqdm
    per, pooled, rocs, models, exs = [], [], [], [], []
    bar = tqdm(jobs, desc="settings x datasets", disable=not progress)
    for job in bar:
        st, ds, pop = job["setting"], job["dataset"], pops[job["dataset"]]
        bar.set_postfix_str(f"{ds} {st.id}")
        recs = [store.get_or_train(u) for u in job["units"]]
        shadows = [store.get_or_train(u) for u in job["shadows"]] or None
        out = outputs(recs, pop, shadows)
        n_neg = int(min(min(k.sum(), (~k).sum()) for k in pop.keep))   # the SVM's balanced test set is the smallest
        base = {"regime": sec.regime, "scale": params["scale"], "dataset": ds, **st.columns(),
                "data_source": recs[0]["data_source"], "epochs": recs[0]["unit"]["epochs"]}
        ents = attack(out, pop, sec, params["attack"], fractions(params) if shadows else None)
        p, q, r, x = tables(ents, base, out, low_fpr(n_neg), pop.y_test, params["verdicts"]["bootstrap"])
        per.append(p), pooled.append(q), rocs.append(r), exs.append(x)
        for role, rs in (("model", recs), ("as-published shadow", shadows or [])):
            for m, rec in enumerate(rs):
                models.append({**base, "role": role, "model": m, "n_members": len(rec["pools"]["in"]["labels"]),
                               "train_acc": 100 * rec["train_acc"], "test_acc": 100 * rec["test_acc"],
                               "gap": 100 * (rec["train_acc"] - rec["test_acc"]), "train_seconds": rec["train_seconds"],
                               "key": rec["key"]})
    cat = lambda xs: pd.concat(xs, ignore_index=True)   # noqa: E731
    return cat(per), cat(pooled), cat(rocs), pd.DataFrame(models), cat(exs)


__all__ = ["AS_PUBLISHED", "FPR_GRID", "LADDER", "Outputs", "Params", "Population", "SWITCHES", "Setting", "OUTCOMES",
           "attack", "datasets", "examples_of", "fpr_label", "fractions", "low_fpr", "outputs", "plan", "population",
           "reading", "row", "run", "settings", "split", "splits_dir", "summary", "svm_vs_strongest", "switch_table",
           "tables", "units", "verdict_grid", "write_splits"]
