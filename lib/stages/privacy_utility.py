"""Privacy at matched utility (notebook 09_privacy_utility, issue 25): the papers' heuristic privacy defences placed
on a privacy-utility frontier beside DP-SGD and an ordinarily regularised ANN, measured on canaries as well as on
the whole population, under attacks whose references are trained with the same defence.

The regime is 08's (lib.stages.ladder: a population per dataset, a keep matrix of M models, every model in turn the
target with the other M − 1 of its setting as references, so every rung is *adaptive*: the attacker's references
are trained exactly like the target, defence included). On top of it:

* **Canaries** (lib.attacks.canaries, Aerni et al. 2024): a seeded share of the population is relabelled to another
  class before any model of the stage trains (`CanaryLoader` serves the relabelled training set; the population's
  labels are the canary labels, so every attack scores a canary against the label it was trained with). They are
  IN for half the models like any example; the canary TPR is pooled over targets at the lowest FPR the pooled OUT
  canaries resolve. The units carry the canary set in their `population` key (never 08's checkpoints).
* **Baselines**: DP-SGD (lib.core.dp, a unit's `dp`), the ANN with weight decay, the ANN stopped early: settings of
  role dp / regularised. Each family is a *curve* of (test accuracy, leakage); lib.claims.matched reads it at a
  defence's accuracy.
* **Non-adaptive** LiRA beside the adaptive one: the defence's targets scored with the undefended ANN's models as
  references (same keep matrix, so the same members), the attacker who does not know the defence.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..attacks import canaries as CN
from ..attacks import lira as L
from ..claims import matched as MU
from ..core import config as C
from . import ladder as LD
from .privacy_utility_params import SECTION, Params, Setting

LEAK = {"auc": "population AUC", "canary_tpr": "canary TPR"}


class CanaryLoader:
    """The stage's dataset loader: the base loader's Tensors, with the canaries' training labels replaced. Picklable
    (worker processes load their own copy)."""

    def __init__(self, base, relabel: dict):
        self.base, self.relabel, self._cache = base, relabel, {}

    def __getstate__(self):
        return {"base": self.base, "relabel": self.relabel, "_cache": {}}

    def __call__(self, name: str):
        if name not in self._cache:
            t = self.base(name)
            if name in self.relabel:
                idx, labels = self.relabel[name]
                y = t.y_train.clone()
                y[np.asarray(idx)] = y.new_tensor(np.asarray(labels))
                t = replace(t, y_train=y)
            self._cache[name] = t
        return self._cache[name]


@dataclass
class Pop:
    population: LD.Population     # its labels `y` are the canary labels
    canaries: CN.Canaries


def populations(sec: Params, loader) -> dict:
    """Per dataset: 08's population at this section's regime and its canaries (seeded, `canaries.fraction`)."""
    out = {}
    for ds in sec.datasets:
        data = loader(ds)
        pop = LD.population(data, sec, ds)
        can = CN.plant(pop.y, int(data.n_classes), fraction=sec.canaries.fraction, seed=sec.canaries.seed)
        out[ds] = Pop(replace(pop, y=can.apply(pop.y)), can)
    return out


def canary_loader(base, pops: dict) -> CanaryLoader:
    return CanaryLoader(base, {ds: (p.population.index[p.canaries.positions], p.canaries.labels)
                               for ds, p in pops.items()})


def units(params: dict, sec: Params, st: Setting, p: Pop) -> list[dict]:
    """The M units of a setting on a population (ladder.units with the setting's overrides, its own epochs, DP-SGD
    for role dp, and the canaries in the population key)."""
    us = LD.units(params, sec, LD.Setting(st.id, st.kind, (p.population.dataset,), st.label,
                                          _overrides(params, sec, st)), p.population)
    for u in us:
        _stage_fields(u, sec, st, p)
    return us


def _overrides(params: dict, sec: Params, st: Setting, lr: float | None = None,
               max_grad_norm: float | None = None) -> dict:
    """The setting's overrides of the regime's unit; a DP-SGD setting's lr and clipping norm are its own (chosen by
    `tuning`), else `lr` / `max_grad_norm` when given (a tuning grid point), else train.lr and dp.max_grad_norm."""
    lr = lr if lr is not None else st.lr if st.lr is not None else params["train"]["lr"][st.kind]
    ov = {"lr": float(lr)}
    for k in ("weight_bits", "act_bits", "encoding", "weight_decay"):
        if getattr(st, k) is not None:
            ov[k] = getattr(st, k)
    if st.role == "dp":
        c = max_grad_norm if max_grad_norm is not None else st.max_grad_norm if st.max_grad_norm is not None \
            else sec.dp.max_grad_norm
        ov["dp"] = {"epsilon": st.epsilon, "delta": sec.dp.delta, "max_grad_norm": float(c)}
    return ov


def _stage_fields(u: dict, sec: Params, st: Setting, p: Pop) -> None:
    if st.epochs is not None:
        u["epochs"] = int(st.epochs)
    u["population"]["canaries"] = {"fraction": sec.canaries.fraction, "seed": sec.canaries.seed,
                                   "n": len(p.canaries)}


# ----------------------------------------------------------------------------- DP-SGD tuning on a validation split

TUNING_SPLIT = 100_000   # split ids of the validation splits: TUNING_SPLIT + dp_tuning.seed (the M models use 0..M-1)


def tuning_split(p: Pop, seed: int) -> dict:
    """The validation split of `dp_tuning.seed`: a seeded half of the population trains (target_in), the other half
    validates (target_out; its canaries are left out of the validation accuracy). The test sample is never read:
    it stays the eval pool only because every split has one."""
    pop = p.population
    rng = np.random.default_rng([int(seed), 9])
    pin = np.zeros(len(pop.index), bool)
    pin[rng.permutation(len(pop.index))[: len(pop.index) // 2]] = True
    # ladder.split of a one-model population whose keep row is that half
    return {**LD.split(replace(pop, keep=pin[None]), 0), "seed": TUNING_SPLIT + int(seed), "mode": "dp_tuning"}


def tuning_plan(params: dict, sec: Params, pops: dict, write: bool = True) -> list[dict]:
    """One job per (dataset, DP-SGD setting, lr, clipping norm) of the grid `dp_tuning`: its unit trains on the
    validation split's training half (split file written to splits_dir(sec) unless `write` is false). The grid's point with the setting's
    own values is the same computation as a target model's only if the split were the same; it is not, so none is
    shared with the M models."""
    from ..core import data as D
    t, jobs = sec.dp_tuning, []
    for ds, p in pops.items():
        sp = tuning_split(p, t.seed)
        if write:
            D.save_split(sp, D.split_path(splits_dir(sec), ds, sp["seed"]))
        for st in sec.of_role("dp"):
            for lr in t.lr[st.kind]:
                for c in t.max_grad_norm:
                    u = C.unit(params, ds, st.kind, "target", sp["seed"], epochs=int(sec.epochs.of(C.family(ds))),
                               batch_size=int(sec.batch_size.of(C.family(ds))), n_in=sp["n_in"], n_out=sp["n_out"],
                               **_overrides(params, sec, st, lr, c))
                    u["init_seed"] = int(sec.seed) * 1000 + 900 + int(t.seed)
                    u["population"] = {**p.population.key(sec.regime), "dp_tuning": {"seed": int(t.seed)}}
                    _stage_fields(u, sec, st, p)
                    jobs.append({"dataset": ds, "setting": st, "lr": float(lr), "max_grad_norm": float(c),
                                 "unit": u})
    return jobs


def tuning(params: dict, sec: Params, store, pops: dict, jobs: list[dict]) -> pd.DataFrame:
    """Train (or load) the tuning grid and read each point's validation accuracy (the split's held-out half,
    canaries left out). One row per grid point: dataset, setting, epsilon, lr, max_grad_norm, val_acc (%),
    n_val, best (the setting's highest val_acc; every tied point is best), in_params (the point is the lr and
    clipping norm params.yaml gives the setting)."""
    rows = []
    for j in jobs:
        rec, p, st = store.get_or_train(j["unit"]), pops[j["dataset"]], j["setting"]
        out = rec["pools"]["out"]
        keep = ~np.isin(out["example"], p.population.index[p.canaries.positions])
        ok = out["outputs"].argmax(1)[keep] == out["labels"][keep]
        chosen = _overrides(params, sec, st)
        rows.append({"dataset": j["dataset"], "setting": st.id, "label": st.label, "kind": st.kind,
                     "epsilon": _eps(st), "lr": j["lr"], "max_grad_norm": j["max_grad_norm"],
                     "val_acc": 100 * float(ok.mean()), "n_val": int(keep.sum()),
                     "train_acc": 100 * rec["train_acc"], "train_seconds": rec.get("train_seconds", np.nan),
                     "in_params": bool(np.isclose(chosen["lr"], j["lr"])
                                       and np.isclose(chosen["dp"]["max_grad_norm"], j["max_grad_norm"]))})
    df = pd.DataFrame(rows)
    if df.empty:
        return df.assign(best=pd.Series(dtype=bool))
    return df.assign(best=df.val_acc == df.groupby(["dataset", "setting"], sort=False).val_acc.transform("max"))


def tuning_mismatch(tuned: pd.DataFrame) -> pd.DataFrame:
    """The DP-SGD settings whose lr / clipping norm in params.yaml are not a best point of the tuning grid (ties with
    the best count as best; empty when params.yaml holds tuned values), with the first best point in grid order. A
    setting whose params.yaml values are not in the grid is listed too (its *_params columns are NaN)."""
    cols = ["dataset", "setting", "lr", "max_grad_norm", "val_acc", "lr_params", "max_grad_norm_params",
            "val_acc_params"]
    rows = []
    for (ds, sid), g in tuned.groupby(["dataset", "setting"], sort=False) if len(tuned) else []:
        have = g[g.in_params]
        if len(have) and have.best.any():
            continue
        b = g[g.best].iloc[0]
        h = have.iloc[0] if len(have) else {"lr": np.nan, "max_grad_norm": np.nan, "val_acc": np.nan}
        rows.append([ds, sid, b.lr, b.max_grad_norm, b.val_acc, h["lr"], h["max_grad_norm"], h["val_acc"]])
    return pd.DataFrame(rows, columns=cols)


def splits_dir(sec: Params) -> Path:
    return Path(sec.checkpoints_dir) / "splits"


def plan(params: dict, sec: Params, base_loader):
    """(populations with canaries, their loader, jobs: one per (setting, dataset) with its units); split files
    written to splits_dir(sec)."""
    pops = populations(sec, base_loader)
    jobs = [{"setting": st, "dataset": ds, "units": units(params, sec, st, pops[ds])}
            for ds in sec.datasets for st in sec.settings]
    check_dp(sec, jobs)
    for p in pops.values():
        LD.write_splits(p.population, splits_dir(sec))
    return pops, canary_loader(base_loader, pops), jobs


def check_dp(sec: Params, jobs: list[dict]) -> None:
    """Before anything trains: every DP-SGD setting's ε is reachable by its units' steps (Opacus's accountant), else
    a ConfigError naming the setting's `epsilon`."""
    from ..core import dp as DP
    for j in jobs:
        st = j["setting"]
        if st.role != "dp" or st.epsilon is None:
            continue
        u = j["units"][0]
        try:
            DP.calibrate(st.epsilon, sec.dp.delta, int(u["n_in"]), int(u["batch_size"]), int(u["epochs"]))
        except ValueError as e:
            raise C.ConfigError(f"params.yaml: `{sec.key('settings')}.{st.id}.epsilon` = {st.epsilon:g} on "
                                f"{j['dataset']}: {e}") from e


def _nonadaptive(out: LD.Outputs, ref: LD.Outputs, pop: LD.Population, sec: Params) -> list[dict]:
    """LiRA online on `out`'s targets with the reference setting's models as references (leave-one-out on the same
    keep matrix): the attacker who trains its references without the defence."""
    y, keep, M_ = pop.y, pop.keep, pop.n_models
    t_scores = np.stack([L.scores_from_logits(z, y) for z in out.logits])
    r_scores = np.stack([L.scores_from_logits(z, y) for z in ref.logits])
    atk = L.LiRA(online=True, fix_variance=sec.lira.fix_variance, variant=sec.lira.variant)
    res = []
    for m in range(M_):
        rest = np.arange(M_) != m
        use = L.balanced_references(keep[rest])
        refs = np.where(use[..., None], r_scores[rest], np.nan)
        res.append({"target": m, "attack": "LiRA online (non-adaptive)", "truth": keep[m],
                    "scores": atk.member_scores(refs, keep[rest], t_scores[m]), "example": np.arange(len(y))})
    return res


def run(params: dict, sec: Params, store, pops: dict, jobs: list[dict], progress: bool = True):
    """Train (or load) every job's models and attack them. Returns (pooled population rows per setting and attack,
    canary rows per setting and attack, one row per model)."""
    from ..core.progress import tqdm
    pooled, canary, models, outs = [], [], [], {}
    ref_id = sec.of_role("reference")[0].id
    order = sorted(jobs, key=lambda j: j["setting"].id != ref_id)        # the reference first: non-adaptive refs
    bar = tqdm(order, desc="settings x datasets", disable=not progress)
    for job in bar:
        st, ds, p = job["setting"], job["dataset"], pops[job["dataset"]]
        pop = p.population
        bar.set_postfix_str(f"{ds} {st.id}")
        recs = [store.get_or_train(u) for u in job["units"]]
        if st.ptq is not None:
            recs = [post_training_quantized(store, r, st.ptq) for r in recs]
        out = outs[(ds, st.id)] = LD.outputs(recs, pop)
        base = {"regime": sec.regime, "scale": params["scale"], "dataset": ds, "setting": st.id, "label": st.label,
                "role": st.role, "kind": st.kind, "claim": st.claim or "", "epsilon": _eps(st),
                "epochs": recs[0]["unit"]["epochs"], "data_source": recs[0]["data_source"]}
        ents = [e for e in LD.attack(out, pop, sec, params["attack"]) if e["attack"] in sec.attacks]
        if st.role == "defence":
            ents += _nonadaptive(out, outs[(ds, ref_id)], pop, sec)
        for name in dict.fromkeys(e["attack"] for e in ents):
            es = [e for e in ents if e["attack"] == name]
            sc = np.concatenate([e["scores"] for e in es])
            tr = np.concatenate([e["truth"] for e in es]).astype(bool)
            who = np.concatenate([np.full(len(e["truth"]), e["target"]) for e in es])
            acc = {"train_acc": float(out.train_acc.mean()), "test_acc": float(out.test_acc.mean()),
                   "test_acc_se": float(out.test_acc.std(ddof=1) / np.sqrt(len(out.test_acc))),
                   "gap": float((out.train_acc - out.test_acc).mean()), "targets": len(es)}
            pooled.append({**base, "attack": name, **acc,
                           **LD.row(sc, tr, LD.low_fpr(int((~tr).sum())), groups=who,
                                    boot=params["verdicts"]["bootstrap"])})
            flat = np.stack([e["scores"] for e in es])
            cm = CN.canary_metrics(flat, pop.keep[[e["target"] for e in es]], p.canaries.positions,
                                   LD.FPR_GRID, targets=None).reset_index()
            for r in cm.to_dict("records") + _most_vulnerable(flat, pop.keep[[e["target"] for e in es]], p):
                canary.append({**base, "attack": name, **acc, **r})
        for m, rec in enumerate(recs):
            last = rec["curve"][-1] if rec["curve"] else {}
            models.append({**base, "model": m, "train_acc": 100 * rec["train_acc"], "test_acc": 100 * rec["test_acc"],
                           "gap": 100 * (rec["train_acc"] - rec["test_acc"]), "train_seconds": rec["train_seconds"],
                           "epsilon_spent": last.get("epsilon", np.nan),
                           "noise_multiplier": last.get("noise_multiplier", np.nan), "key": rec["key"]})
    return pd.DataFrame(pooled), pd.DataFrame(canary), pd.DataFrame(models)


def post_training_quantized(store, rec: dict, ptq: dict) -> dict:
    """A trained model's record with its weights post-training quantized (paper C, lib.core.ptq.quantize_model:
    every linear/conv layer, per-channel asymmetric grid, `ptq.method` at `ptq.bits`, calibrated on the model's own
    members as the authors) and re-evaluated on its pools. Not cached: quantizing a small net costs seconds. The
    record keeps the trained model's key and unit, with `ptq` added to the unit it reports."""
    from ..core import data as D
    from ..core import ptq as Q
    from ..core import train as TR
    unit = rec["unit"]
    data = store.data_loader(unit["dataset"])
    split = D.load_split(D.split_path(store.splits_dir, unit["dataset"], unit["seed"]))
    x_in, _ = D.pool(data, split, TR.pools_for(unit)[0])
    qm, _ = Q.quantize_model(store.load_model(rec), ptq["method"], float(ptq["bits"]), x_in, seed=int(unit["seed"]),
                             device=store.dev)
    ev = TR.evaluate(qm, unit, data, split, dev=store.dev, batch_size=store.eval_batch_size)
    return {**rec, **ev, "unit": {**unit, "ptq": dict(ptq)}}


def _most_vulnerable(scores: np.ndarray, keep: np.ndarray, p: Pop) -> list[dict]:
    """The population's own most vulnerable examples (canaries left out), as many as there are canaries: ranked by
    the separation d' of their member scores on every other target, their TPR pooled over the remaining targets
    (lib.attacks.canaries.most_vulnerable, holdout), beside the population on those same targets. Rows with subset
    "most_vulnerable" and "population (holdout targets)"; none with fewer than 8 targets (smoke's 4 cannot rank)."""
    others = np.setdiff1d(np.arange(scores.shape[1]), p.canaries.positions)
    if scores.shape[0] < 8 or not len(p.canaries):   # ranking needs >= 2 IN and >= 2 OUT among half the targets
        return []
    try:
        mv = CN.most_vulnerable(scores[:, others], keep[:, others], len(p.canaries) / len(others), fprs=LD.FPR_GRID)
    except ValueError:   # no example has >= 2 IN and >= 2 OUT ranking targets: nothing to rank
        return []
    t = mv["metrics"].reset_index()
    t["subset"] = t["subset"].replace({"population": "population (holdout targets)"})
    return t.to_dict("records")


def _eps(st: Setting) -> float:
    if st.role != "dp":
        return np.nan
    return np.inf if st.epsilon is None else float(st.epsilon)


def _tpr_at(r: dict, f) -> float:
    """A canaries.csv row's TPR at FPR f (NaN when f is NaN, e.g. no FPR of the grid was resolvable)."""
    if f is None or f != f:
        return np.nan
    return r.get(f"tpr_at_{100 * f:g}pct".replace(".", "_"), np.nan)


def most_vulnerable_table(canary: pd.DataFrame, attack: str) -> pd.DataFrame:
    """Per dataset and setting under `attack`: AUC and TPR of the population's most vulnerable examples beside the
    whole population on the same (holdout) targets (`run`'s rows of subset most_vulnerable / population (holdout
    targets)), both TPRs at the lowest FPR the most vulnerable examples' OUT pairs resolve (the population's
    resolve lower ones: the same FPR keeps the two comparable)."""
    names = {"most_vulnerable": "most vulnerable", "population (holdout targets)": "population"}
    sub = canary[(canary.attack == attack) & canary.subset.isin(list(names))]
    rows = []
    for (ds, label), g in sub.groupby(["dataset", "label"], sort=False):
        r = {x["subset"]: x for x in g.to_dict("records")}
        if "most_vulnerable" not in r:
            continue
        f = r["most_vulnerable"]["low_fpr"]
        row = {"dataset": ds, "label": label, "FPR": f, "targets": r["most_vulnerable"]["n_targets"],
               "examples": r["most_vulnerable"]["n_examples"]}
        for k, name in names.items():
            row[f"AUC ({name})"] = r[k]["auc"] if k in r else np.nan
            row[f"TPR ({name})"] = _tpr_at(r[k], f) if k in r else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "label"]) if rows else pd.DataFrame()


def leakage(pooled: pd.DataFrame, canary: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, setting, attack): test accuracy and the two leakages with their SEs — the population
    AUC (Hanley) and the canary TPR at the lowest FPR the pooled canary count resolves (binomial SE over the IN
    canaries)."""
    pop = pooled[["dataset", "setting", "label", "role", "kind", "claim", "epsilon", "attack", "test_acc",
                  "test_acc_se", "gap", "auc", "auc_se_hanley"]].rename(columns={"auc_se_hanley": "auc_se"})
    can = canary[canary["subset"] == "canaries"]
    rows = []
    for r in can.to_dict("records"):
        f = r.get("low_fpr")
        t = _tpr_at(r, f)
        n_in = r.get("n_members", np.nan)
        rows.append({"dataset": r["dataset"], "setting": r["setting"], "attack": r["attack"], "canary_fpr": f,
                     "canary_tpr": t, "canary_tpr_se": np.sqrt(t * (1 - t) / n_in) if n_in and t == t else np.nan,
                     "canary_in": n_in, "canary_out": r.get("n_nonmembers", np.nan)})
    return pop.merge(pd.DataFrame(rows), on=["dataset", "setting", "attack"], how="left")


def curves(leak: pd.DataFrame, ds: str, attack: str) -> dict:
    """The baseline curves of one dataset and attack: DP-SGD (the ANN at each ε of the grid, clipping only as its
    ε = ∞ end; with its own tuned lr and clipping norm it is not the undefended ANN's recipe, which is therefore not
    on this curve) and the regularised ANN (weight decay and early stopping, with the undefended ANN as its
    unregularised end)."""
    sub = leak[(leak.dataset == ds) & (leak.attack == attack)]
    ref = sub[sub.role == "reference"]
    ann = lambda d: d[d.kind == "ann"]   # noqa: E731
    return {"DP-SGD (ANN)": ann(sub[sub.role == "dp"]),
            "regularised ANN": pd.concat([sub[sub.role == "regularised"], ref])}


COLS = ["setting", "test_acc", "leak", "leak_se"]   # what lib.claims.matched reads


def _cell(leak: pd.DataFrame, ds: str, attack: str, metric: str) -> tuple[pd.DataFrame, dict]:
    """One (dataset, attack, metric) cell in lib.claims.matched's terms: every setting's rows with `metric` as
    `leak` (and its SE), and the baseline curves that have at least two finite points."""
    as_leak = lambda f: f.rename(columns={metric: "leak", f"{metric}_se": "leak_se"})   # noqa: E731
    rows = as_leak(leak[(leak.dataset == ds) & (leak.attack == attack)])
    base = {k: as_leak(v) for k, v in curves(leak, ds, attack).items()}
    return rows, {k: v for k, v in base.items() if v[COLS[1:]].dropna().shape[0] >= 2}


def matched_tables(leak: pd.DataFrame, sec: Params):
    """For every dataset, attack and leakage metric: lib.claims.matched's verdicts of each defence against each
    baseline curve. Returns (verdicts, comparisons, matching), each with dataset / attack / metric columns."""
    vs, ds_, ms = [], [], []
    for ds in leak.dataset.unique():
        for attack in leak[leak.dataset == ds].attack.unique():
            if attack.endswith("(non-adaptive)"):
                continue
            for metric in ("auc", "canary_tpr"):
                rows, base = _cell(leak, ds, attack, metric)
                d = rows[rows.role == "defence"]
                if d.empty or not base:
                    continue
                s, c, m = MU.judge(d[COLS], base)
                tag = dict(dataset=ds, attack=attack, metric=metric)
                vs.append(s.reset_index().assign(**tag)), ds_.append(c.assign(**tag)), ms.append(m.assign(**tag))
    cat = lambda x: pd.concat(x, ignore_index=True) if x else pd.DataFrame()   # noqa: E731
    return cat(vs), cat(ds_), cat(ms)


def claims(leak: pd.DataFrame, sec: Params):
    """The claims 99 gathers (a second reading of the papers' privacy claims): per dataset and defence, "<its paper
    claim> at matched utility": it leaks less than each baseline curve that brackets its accuracy. The primary cell
    (`primary`: attack, metric, declared before the first run) decides the verdict; every other attack of `attacks`
    and the other leakage metric are secondary comparisons (Holm within their family), reported beside it.
    Returns (the table the comparisons read, the Claims)."""
    from ..claims import verdicts as V
    tables, out = [], []
    prim = (sec.primary["attack"], sec.primary["metric"])
    for ds in sec.datasets:
        for st in sec.of_role("defence"):
            comps = []
            for attack in sec.attacks:
                for metric in ("auc", "canary_tpr"):
                    rows, base = _cell(leak, ds, attack, metric)
                    d = rows[rows.setting == st.id]
                    if d.empty or not base or d[["leak", "leak_se"]].isna().any(axis=None):
                        continue
                    fam = "primary" if (attack, metric) == prim else "secondary"
                    t, cl, _ = MU.matched(d[COLS], base,
                                          tag=f" | {ds}, {attack}, {LEAK[metric]}", family=fam)
                    tables.append(t)
                    comps += list(cl[0].comparisons)
            if not any(c.family == "primary" for c in comps):
                comps = []
            out.append(V.Claim(f"{st.claim} @ matched utility ({ds})", st.claim.split(":")[0][0],
                               f"{st.label} leaks less than DP-SGD and a regularised ANN at its own accuracy "
                               f"(second reading of {st.claim!r}; Aerni et al. 2024)", "leak", tuple(comps),
                               source="issue 25", shown_in="09: matched utility", table="matched",
                               note="" if comps else "not tested: no baseline curve brackets its accuracy at the "
                                                     "primary cell"))
    table = pd.concat(tables, ignore_index=True).drop_duplicates("setting") if tables else pd.DataFrame(
        columns=["setting", "seed", "leak", "leak_se"])
    return table, out


def _dominated(leak: pd.DataFrame, attack: str, sec: Params) -> list[str]:
    """Markdown lines for the defences a baseline curve cannot be read at because they are LESS accurate than all of
    its points: the curve's least accurate point is then more accurate than the defence, and where it also leaks
    no more (population AUC within 1.96 combined SEs, or less) the defence is dominated — what it gives up in
    accuracy buys nothing that baseline does not. Descriptive only: never a verdict (the curve is not
    extrapolated, and a defence that leaks less there may do so because it is less accurate)."""
    out = []
    sub = leak[leak.attack == attack]
    for st in sec.of_role("defence"):
        d = sub[sub.setting == st.id]
        if d.empty:
            continue
        d = d.iloc[0]
        for name, pts in curves(leak, d.dataset, attack).items():
            pts = pts.dropna(subset=["test_acc", "auc"])
            if len(pts) < 2 or d.test_acc >= pts.test_acc.min():
                continue
            b = pts.sort_values("test_acc").iloc[0]
            z = 1.96 * float(np.hypot(b.auc_se, d.auc_se))
            verdict = "dominated: more accurate and leaks no more" if b.auc <= d.auc + z else \
                "leaks more than the defence (which may owe that to its lower accuracy)"
            out.append(f"  * {st.label} is below the {name} curve's accuracy range: its least accurate point, "
                       f"{b.label}, has {b.test_acc:.1f}% (vs {d.test_acc:.1f}%) and AUC {b.auc:.3f} (vs "
                       f"{d.auc:.3f}): {verdict}.")
    return out


def reading(leak: pd.DataFrame, claims_csv: pd.DataFrame, sec: Params, scale: str) -> str:
    """'Reading these numbers' of notebook 09 (markdown), from leakage.csv and claims.csv."""
    prim = sec.primary["attack"]
    lines = []
    for ds in leak.dataset.unique():
        d = leak[(leak.dataset == ds) & (leak.attack == prim)].set_index("setting")
        fmt = lambda r: (f"{r.test_acc:.1f}% test accuracy, AUC {r.auc:.3f}, canary TPR "   # noqa: E731
                         + (f"{r.canary_tpr:.3f} at {100 * r.canary_fpr:.3g}% FPR" if r.canary_tpr == r.canary_tpr
                            else f"not resolvable at {100 * r.canary_fpr:.3g}% FPR (tied scores straddle the "
                                 "threshold: canaries.csv says where)" if r.canary_fpr == r.canary_fpr
                            else "not resolvable (too few OUT canaries)"))
        ref = sec.of_role("reference")[0].id
        lines.append(f"* **{ds}, {prim}**: the undefended ANN {fmt(d.loc[ref])}.")
        for st in sec.of_role("defence"):
            if st.id in d.index:
                lines.append(f"  * {st.label}: {fmt(d.loc[st.id])}.")
        dp = d[d.role == "dp"].sort_values("test_acc")
        if len(dp):
            lines.append("  * DP-SGD: " + "; ".join(
                f"{r.label} {r.test_acc:.1f}% / AUC {r.auc:.3f}" for r in dp.itertuples()) + ".")
        n_out = d.canary_out.dropna()
        if len(n_out):
            lines.append(f"  * {int(n_out.iloc[0])} OUT canary-target pairs pooled: the lowest FPR they resolve is "
                         f"{100 * 10 / n_out.iloc[0]:.2g}% (10 false positives), not the 0.1% of Aerni et al.; "
                         "their 64 models and 1% canaries of a 50,000-image set resolve it (`scale: paper`).")
        lines += _dominated(leak[leak.dataset == ds], prim, sec)
    for _, r in claims_csv.iterrows():
        lines.append(f"* {r['claim']}: {r['our verdict']}.")
    lines.append(f"* Scale {scale}: one dataset, few models, DP-SGD tuned on one validation split — read it as the "
                 "protocol working end to end, not as the papers' settings.")
    return "\n".join(lines)


__all__ = ["SECTION", "claims", "reading", "Params", "CanaryLoader", "Pop", "populations", "canary_loader", "units", "splits_dir", "plan",
           "run", "leakage", "curves", "matched_tables", "LEAK", "tuning_split", "tuning_plan", "tuning", "tuning_mismatch",
           "post_training_quantized", "most_vulnerable_table"]
