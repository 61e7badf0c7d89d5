"""Membership-inference experiments of paper A §V: configurations → trained (target, shadow) pairs → one
tidy row per (configuration, seed); seed-level summaries and ad-hoc paired comparisons (paper A's claims
are data in lib.claims.registry, judged by lib.claims.verdicts).

A *configuration* is a dataset, a kind (ann / snn) and the model settings that §V varies (weight bits,
activation bits and threshold θ, surrogate). For every seed the target and the shadow model of that
configuration are trained once (lib.core.train.ModelStore caches them) and attacked with

    svm  = lib.attacks.mia.shadow_attack(shadow outputs on shadow-in/out  →  target outputs on target-in/out)
    loss = lib.attacks.mia.loss_threshold_attack(target losses on target-in/out)        (sanity baseline)

Features are the records' stored outputs: ANN logits, SNN final-step output membrane potentials.
The sections 02-04 of params.yaml are `Params` (one class for the three; each section's own keys in OWN_KEYS).
"""
from __future__ import annotations

from functools import partial

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from ..core.progress import tqdm

from ..core import config as C
from ..attacks.mia import loss_threshold_attack, shadow_attack
from ..claims import registry as CL, verdicts as V
from ..claims.registry import FULL_PRECISION
from ..claims.metrics import auc_se_hanley, chance_tpr, mean_std, roc_curve_table, tpr_resolvable, tpr_status
# the sections 02-04 at one scale (torch-free, for the validator)
from .membership_params import (OWN_KEYS, Params, activation_quantization, surrogate_gradients,  # noqa: F401
                                weight_quantization)


@dataclass
class Setting:
    """One configuration of §V. `overrides` go to lib.core.config.unit; the other fields are result columns."""
    dataset: str
    kind: str
    method: str
    weight_bits: int | None = None
    act_bits: int | None = None
    act_threshold: float | None = None
    surrogate: str | None = None
    # §V-A SNNs with act_bits: True = state_quant on every LIF layer, the output layer's membrane (the attack's
    # features) included; False = output membrane left unquantized (hidden LIF layers still quantized); None = n/a
    output_quant: bool | None = None
    overrides: dict = field(default_factory=dict)
    # the section (at the active scale) the setting belongs to: its seeds are the section's (config.effective)
    section: "Params | None" = field(default=None, repr=False, compare=False)

    def columns(self) -> dict:
        d = asdict(self)
        d.pop("overrides")
        d.pop("section")
        return d


# ----------------------------------------------------------------------------- grids of §V

def _section_base(sec: Params, dataset: str) -> dict:
    """Unit overrides a section (at the active scale) applies to every model of `dataset`: the per-family values it
    sets itself (lib.core.config.section_values, the section layer of config.effective: members → n_in/n_out,
    epochs, batch_size). Values it leaves to the scale need no override, so those units stay 01_models' own."""
    own = C.section_values(sec.per_family, dataset)
    return {k: own[k] for k in ("n_in", "n_out", "epochs", "batch_size") if k in own}


def _of_section(settings: list[Setting], sec: Params) -> list[Setting]:
    for st in settings:
        st.section = sec
    return settings


def weight_quant_settings(sec: Params) -> list[Setting]:
    """§V-B: full precision and weight bits b ∈ sec.bits for every dataset and kind (fast sigmoid SNNs)."""
    out = []
    for ds in sec.datasets:
        base = _section_base(sec, ds)
        for kind in sec.kinds:
            out.append(Setting(ds, kind, FULL_PRECISION, overrides=dict(base)))
            for b in sec.bits:
                out.append(Setting(ds, kind, f"w={b}", weight_bits=b, overrides={**base, "weight_bits": b}))
    return _of_section(out, sec)


def act_quant_settings(sec: Params, params: dict | None = None) -> list[Setting]:
    """§V-A: full precision (one model: ReLU / LIF with θ = model.snn.threshold; act_threshold None) and
    activation bits b at every clipping threshold θ (ANN: QuantReLU clipped at θ; SNN: state_quant(b, θ) on the
    membrane of every LIF layer, output layer included, whose firing threshold is θ; output_quant True).

    For SNNs two more sets of models remove the confounds of that comparison:

    * **full-precision SNN at every θ** (method 'full precision', act_threshold θ, unit override threshold=θ):
      θ is the SNN's firing threshold as well as the quantizer's range, so a quantized SNN at θ is compared with
      the unquantized SNN at the same θ. At θ = model.snn.threshold (`params`; 1.0 without it) the override is
      left out, so that unit is exactly the full-precision unit (trained once, read from the cache).
    * with `sec.output_layer_variant`: **quantized SNN whose output layer's membrane is not quantized**
      (output_quant False, unit override quant_output=False) at every b and θ: the attack's features stay
      continuous while the hidden LIF layers are quantized.
    """
    default_theta = float(params["model"]["snn"]["threshold"]) if params is not None else 1.0
    out = []
    for ds in sec.datasets:
        base = _section_base(sec, ds)
        for kind in sec.kinds:
            snn = kind == "snn"
            out.append(Setting(ds, kind, FULL_PRECISION, overrides=dict(base)))
            if snn:
                for th in sec.thresholds:
                    ov = dict(base) if float(th) == default_theta else {**base, "threshold": float(th)}
                    out.append(Setting(ds, kind, FULL_PRECISION, act_threshold=float(th), overrides=ov))
            for b in sec.bits:
                for th in sec.thresholds:
                    out.append(Setting(ds, kind, f"a={b}", act_bits=b, act_threshold=float(th),
                                       output_quant=True if snn else None,
                                       overrides={**base, "act_bits": b, "act_threshold": float(th)}))
            if snn and sec.output_layer_variant:
                for b in sec.bits:
                    for th in sec.thresholds:
                        out.append(Setting(ds, kind, f"a={b}", act_bits=b, act_threshold=float(th), output_quant=False,
                                           overrides={**base, "act_bits": b, "act_threshold": float(th),
                                                      "quant_output": False}))
    return _of_section(out, sec)


def surrogate_names(sec: Params) -> list[str]:
    """§V-C's surrogates, then the trap variants the section switches on."""
    return list(sec.surrogates) + [v for v in ("spike_rate_escape_legacy", "triangular_true") if getattr(sec, v)]


def surrogate_settings(sec: Params, params: dict) -> list[Setting]:
    """§V-C: full-precision SNNs trained with each surrogate (and the optional variants)."""
    names = surrogate_names(sec)
    out = []
    for ds in sec.datasets:
        base = _section_base(sec, ds)
        for name in names:
            ov = dict(base)
            if name != params["model"]["snn"]["surrogate"]:   # the default unit stays identical to 01's / 03's
                ov["surrogate"] = name
            out.append(Setting(ds, "snn", name, surrogate=name, overrides=ov))
    return _of_section(out, sec)


# ----------------------------------------------------------------------------- attacking one pair

def attack_pair(target: dict, shadow: dict, attack: dict, seed: int):
    """Shadow-model SVM attack and loss-threshold baseline on stored records.
    Returns (row of metrics, svm AttackResult, loss AttackResult)."""
    t, s = target["pools"], shadow["pools"]
    svm = shadow_attack(s["in"]["outputs"], s["out"]["outputs"], t["in"]["outputs"], t["out"]["outputs"],
                        shadow_in_labels=s["in"]["labels"], shadow_out_labels=s["out"]["labels"],
                        target_in_labels=t["in"]["labels"], target_out_labels=t["out"]["labels"],
                        mode=attack["mode"], max_train=attack["max_train"], standardize=attack["standardize"],
                        seed=seed, n_boot=attack["n_boot"])
    loss = loss_threshold_attack(t["in"]["loss"], t["out"]["loss"], target_in_labels=t["in"]["labels"],
                                 target_out_labels=t["out"]["labels"], seed=seed, n_boot=attack["n_boot"])
    row = svm.to_row()
    # Quantized SNN output membranes take at most 2^b values per class, so the attack's features can collapse
    # onto a few points: count the distinct target output vectors and distinct SVM scores.
    row["distinct_outputs"] = int(len(np.unique(np.concatenate([t["in"]["outputs"], t["out"]["outputs"]]), axis=0)))
    row["distinct_scores"] = int(len(np.unique(svm.scores)))
    lrow = loss.to_row()
    row.update({f"loss_{k}": lrow[k] for k in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_1pct", "tpr_at_0_1pct")})
    return row, svm, loss


def units_of(params: dict, settings: list[Setting]) -> list[dict]:
    """Target and shadow unit of every setting and seed (its section's, config.effective), in run order."""
    return [C.unit(params, st.dataset, st.kind, role, seed, **st.overrides)
            for st in settings for seed in _seeds(params, st) for role in ("target", "shadow")]


def _seeds(params: dict, st: Setting) -> list[int]:
    return C.seeds(params, st.dataset, st.section.per_family if st.section is not None else None)


def train_parallel(store, params: dict, settings: list[Setting], section: str, read_sections=(),
                   workers: int | None = None, *, units: list[dict] | None = None, splits_dir=None):
    """Train every missing target/shadow unit of `settings` (or the given `units`) in `workers` single-threaded
    processes (each writes its own checkpoint; None = execution.workers, lib.core.executor); with workers = 1
    nothing happens here and the caller trains them in order. With execution.executor `ray` they are Ray tasks
    instead, whatever `workers` says.
    On a 2-core CPU two single-threaded SNNs finish about twice as fast as one after the other (small layers do not
    use a second thread). `splits_dir`: where the units' split files are when not the section's (the store
    must read the same folder). Returns the number of models trained."""
    from ..core import executor as EX
    todo = store.missing(units_of(params, settings) if units is None else units)
    workers = EX.active().workers if workers is None else workers
    if not EX.active().ray and workers <= 1:
        return 0
    # the largest models first, so the workers finish together
    todo.sort(key=lambda u: (C.family(u["dataset"]) != "image", u["kind"] != "snn"))
    return store.train_missing(todo, workers=workers, desc="training")


def run(store, params: dict, settings: list[Setting], *, progress: bool = True):
    """Train (or load) target and shadow of every setting and seed, attack each pair.

    Returns (results, examples, roc): one row per (setting, seed) with accuracies (in %), every attack metric and
    `examples` (the id of its per-example outcomes); the per-example outcomes (`outcomes`: the target's correctness
    on every eval example, the svm and loss attacks' score of every attack-test example); the svm ROC curve of
    every row."""
    jobs = [(st, seed) for st in settings for seed in _seeds(params, st)]
    rows, examples, rocs = [], [], []
    bar = tqdm(jobs, desc="configurations × seeds", disable=not progress)
    for st, seed in bar:
        bar.set_postfix_str(f"{st.dataset} {st.kind} {st.method} {st.act_threshold or ''} seed={seed}")
        target = store.get_or_train(C.unit(params, st.dataset, st.kind, "target", seed, **st.overrides))
        shadow = store.get_or_train(C.unit(params, st.dataset, st.kind, "shadow", seed, **st.overrides))
        metrics, svm, loss = attack_pair(target, shadow, params["attack"], seed)
        cols = {**st.columns(), "seed": seed}
        ex_id = f"{target['key']}/{shadow['key']}"
        rows.append({**cols, "train_acc": 100 * target["train_acc"], "test_acc": 100 * target["test_acc"],
                     "shadow_train_acc": 100 * shadow["train_acc"], "shadow_test_acc": 100 * shadow["test_acc"],
                     **metrics, "loss_auc_se_hanley": loss.to_row()["auc_se_hanley"],
                     "epochs": target["unit"]["epochs"], "n_members": len(target["pools"]["in"]["labels"]),
                     "n_eval": len(target["pools"]["eval"]["labels"]), "split_mode": params["00_data"]["split_mode"],
                     "target_seconds": target["train_seconds"], "shadow_seconds": shadow["train_seconds"],
                     "data_source": target["data_source"], "scale": params["scale"],
                     "target_key": target["key"], "shadow_key": shadow["key"], "examples": ex_id})
        examples.append(outcomes(target, {"svm": svm, "loss": loss}, ex_id))
        rocs.append(roc_curve_table(svm.membership, svm.scores).assign(**cols))
    ex = pd.concat(examples, ignore_index=True).drop_duplicates(["id", "measure", "example"])
    return pd.DataFrame(rows), ex, pd.concat(rocs, ignore_index=True)


# what each metric column of the results is, computed from the per-example outcomes (lib.claims.verdicts)
OUTCOMES = {"test_acc": V.Outcome("eval", "accuracy", scale=100.0), "auc": V.Outcome("svm", "auc"),
            "tpr_at_1pct": V.Outcome("svm", "tpr", 0.01), "tpr_at_0_1pct": V.Outcome("svm", "tpr", 0.001),
            "loss_auc": V.Outcome("loss", "auc")}


def outcomes(target: dict, attacks: dict, id_: str) -> pd.DataFrame:
    """Per-example outcomes of one evaluated target (a lib.core.train record): measure "eval" = correct (0/1) on
    every eval example; for each attack {name: mia.AttackResult} its score and membership on every attack-test
    example. `example` is the dataset-wide id (lib.core.data.example_ids), so two models' outcomes pair on it."""
    ev = target["pools"]["eval"]
    parts = [pd.DataFrame({"id": id_, "measure": "eval", "example": _ids(ev),
                           "correct": (np.asarray(ev["outputs"]).argmax(1) == np.asarray(ev["labels"])).astype(np.int8)})]
    for name, res in attacks.items():
        ids = np.empty(len(res.index), np.int64)
        for side in ("in", "out"):
            m = res.pool == side
            ids[m] = _ids(target["pools"][side])[res.index[m]]
        parts.append(pd.DataFrame({"id": id_, "measure": name, "example": ids, "member": res.membership.astype(np.int8),
                                   "score": res.scores.astype(float)}))
    return pd.concat(parts, ignore_index=True)


def _ids(pool: dict) -> np.ndarray:
    """The pool's dataset-wide example ids (a record from before they were stored: its positions)."""
    return np.asarray(pool["example"]) if "example" in pool else np.arange(len(pool["labels"]))


# examples_of(frame, params): a stage's examples.csv.gz as lib.claims.verdicts.Examples with this module's OUTCOMES
examples_of = partial(V.Examples.of, outcomes=OUTCOMES)


def write(results: pd.DataFrame, examples: pd.DataFrame, roc: pd.DataFrame, res_dir: str | Path,
          roc_plots: list[tuple[str, str, str]] = ()) -> None:
    """results.csv, examples.csv.gz (per-example outcomes), roc_curves.csv, and roc/<dataset>_<kind>_<method>.csv
    (first seed; the files `dvc plots` shows) for each (dataset, kind, method) in `roc_plots`."""
    res_dir = Path(res_dir)
    res_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(res_dir / "results.csv", index=False)
    write_examples(examples, res_dir / "examples.csv.gz")
    roc.to_csv(res_dir / "roc_curves.csv", index=False)
    (res_dir / "roc").mkdir(exist_ok=True)
    for f in (res_dir / "roc").glob("*.csv"):
        f.unlink()
    for ds, kind, method in roc_plots:
        sub = roc[(roc.dataset == ds) & (roc.kind == kind) & (roc.method == method)]
        if len(sub):
            if "act_threshold" in sub.columns:   # 02: the single FP model, not the FP SNNs trained at each θ
                sub = sub[sub.act_threshold.isna()]
            sub = sub[sub.seed == sub.seed.min()][["fpr", "tpr"]]
            sub.to_csv(res_dir / "roc" / f"{ds}_{kind}_{method.replace(' ', '_').replace('=', '')}.csv", index=False)


def write_examples(frame: pd.DataFrame, path: str | Path) -> None:
    """Per-example outcomes as a gzip CSV, scores to 7 significant digits (the file is committed with the run;
    float32 precision, enough for ranks and tied blocks alike). The gzip header carries no time stamp, so the same
    outcomes give the same bytes and a rerun leaves the committed file unchanged."""
    frame.to_csv(path, index=False, float_format="%.7g", compression={"method": "gzip", "mtime": 0})


# ----------------------------------------------------------------------------- summaries

METRICS = ("train_acc", "test_acc", "auc", "tpr_at_1pct", "tpr_at_0_1pct", "loss_auc")
KEYS = ["dataset", "kind", "method", "weight_bits", "act_bits", "act_threshold", "surrogate", "output_quant"]


def summary(results: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Mean and std over seeds of every metric, per configuration; also the mean 95% CI half-width of
    the AUC over the attack test set (`auc_ci_half`) and the number of seeds."""
    keys = [k for k in KEYS if k in results.columns]
    df = results.assign(auc_ci_half=(results.auc_ci_high - results.auc_ci_low) / 2)
    g = df.groupby(keys, dropna=False, sort=False)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["auc_ci_half"] = g["auc_ci_half"].mean()
    out["n_test"] = g["n_test_in"].mean() + g["n_test_out"].mean()
    out["n_seeds"] = g.size()
    out["data_source"] = g["data_source"].first()
    return out.reset_index()


def low_fpr_table(results: pd.DataFrame, keys=("dataset", "kind", "method")) -> pd.DataFrame:
    """TPR at 1% and 0.1% FPR per configuration (mean over seeds) beside what the attack test set can resolve:
    N⁻, the smallest FPR 1/N⁻, and a random score's TPR at that operating point. A TPR that N⁻ cannot resolve is
    shown as its status text ('not resolvable (N⁻ = …)'), never as a number."""
    keys = [k for k in keys if k in results.columns]
    rows = []
    for k, g in results.groupby(keys, sort=False, dropna=False):
        n_neg = int(g.n_test_out.median())
        row = dict(zip(keys, k if isinstance(k, tuple) else (k,)))
        row.update({"N⁻ (non-members)": n_neg, "smallest FPR": 1.0 / n_neg, "AUC": g.auc.mean()})
        if "loss_auc" in g:
            row["loss AUC"] = g.loss_auc.mean()
        for fpr, col in ((0.01, "tpr_at_1pct"), (0.001, "tpr_at_0_1pct")):
            name = f"TPR@{fpr:.1%}".replace(".0%", "%")
            row[name] = f"{g[col].mean():.4f}" if tpr_resolvable(fpr, n_neg) else tpr_status(fpr, n_neg)
            row[f"{name} chance"] = chance_tpr(fpr, n_neg)
        row["seeds"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows).set_index(keys)


def cell(mean: float, std: float, digits: int) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def paper_side_by_side(summ: pd.DataFrame, paper: pd.DataFrame, *, method_col: str = "method",
                       kinds=("ann", "snn")) -> pd.DataFrame:
    """Table II / III layout: per dataset and method, for each kind, train acc, test acc and MIA AUC,
    ours (mean ± std over seeds) and the paper's (labelled `(paper)`) in adjacent columns."""
    rows = []
    order = list(dict.fromkeys(summ[method_col]))
    for ds in dict.fromkeys(summ.dataset):
        for method in order:
            row = {"dataset": ds, "method": method}
            any_ours = False
            for kind in kinds:
                ours = summ[(summ.dataset == ds) & (summ.kind == kind) & (summ[method_col] == method)]
                pap = paper[(paper.dataset == ds) & (paper.kind == kind) & (paper.method == method)]
                pre = f"{kind.upper()} " if len(kinds) > 1 else ""
                for m, p, d in (("train_acc", "train_acc", 2), ("test_acc", "test_acc", 2), ("auc", "auc", 4)):
                    if len(ours):
                        o = ours.iloc[0]
                        row[f"{pre}{m} (ours)"] = cell(o[f"{m}_mean"], o[f"{m}_std"], d)
                        any_ours = True
                    else:
                        row[f"{pre}{m} (ours)"] = "—"
                    row[f"{pre}{m} (paper)"] = cell(pap.iloc[0][p], pap.iloc[0][p + "_std"], d) if len(pap) else "—"
                if len(ours):
                    row[f"{pre}AUC 95% CI ± (ours)"] = f"{ours.iloc[0]['auc_ci_half']:.3f}"
                    row[f"{pre}seeds"] = int(ours.iloc[0]["n_seeds"])
            if any_ours:
                rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "method"])


# ----------------------------------------------------------------------------- comparisons

def comparison_table(df: pd.DataFrame, pairs: list[tuple[str, dict, dict, str]], metric: str = "auc",
                     margins: dict | None = None, examples: V.Examples | None = None) -> pd.DataFrame:
    """One row per (label, a, b, expected direction), judged as one family (Holm) by lib.claims.verdicts, paired
    on the same examples with `examples`. expect "similar" is an equivalence test within `margins[metric]`
    (lib.claims.registry.comparison)."""
    comps = tuple(CL.comparison(label, a, b, e, metric, margins) for label, a, b, e in pairs)
    return V.compare_claim(df, V.Claim("comparisons", "A", "", metric, comps), examples)


def distinct_outputs_of(results: pd.DataFrame, claims: list[V.Claim]) -> pd.DataFrame:
    """Per claim comparison (claim, comparison = its label): the median over the matching rows of the number of
    distinct target output vectors (`distinct_outputs`, attack_pair) and of distinct SVM scores, on side a and
    side b, to show beside each verdict: a quantized SNN output collapses the attack's features onto a few points."""
    rows = []
    for cl in claims:
        for c in cl.comparisons:
            r = {"claim": cl.id, "comparison": c.label}
            for side, f in (("a", c.a), ("b", c.b)):
                sel = V._select(results, f) if f is not None else results.iloc[0:0]
                for col in ("distinct_outputs", "distinct_scores"):
                    r[f"{col} {side}"] = float(sel[col].median()) if col in sel.columns and len(sel) else np.nan
            rows.append(r)
    return pd.DataFrame(rows, columns=["claim", "comparison", "distinct_outputs a", "distinct_scores a",
                                       "distinct_outputs b", "distinct_scores b"])


def noise_floor(n_in: int, n_out: int, auc: float = 0.5) -> float:
    """95% half-width of an AUC near `auc` from n_in members and n_out non-members (Hanley & McNeil)."""
    return 1.96 * auc_se_hanley(auc, int(n_in), int(n_out))


def noise_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: attack test-set size, the Hanley 95% half-width of a chance AUC at that size, the mean
    bootstrap CI half-width we measured, and the std of the AUC over seeds (median over configurations)."""
    rows = []
    for ds, g in results.groupby("dataset", sort=False):
        n_in, n_out = int(g.n_test_in.median()), int(g.n_test_out.median())
        keys = [k for k in KEYS if k in g.columns and k != "dataset"]
        sd = g.groupby(keys, dropna=False)["auc"].std().median()
        rows.append({"dataset": ds, "attack test IN": n_in, "attack test OUT": n_out,
                     "±95% at AUC 0.5 (Hanley)": noise_floor(n_in, n_out),
                     "mean bootstrap ±95% (ours)": float(((g.auc_ci_high - g.auc_ci_low) / 2).mean()),
                     "median std over seeds": sd})
    return pd.DataFrame(rows).set_index("dataset")




__all__ = ["Params", "OWN_KEYS", "activation_quantization", "weight_quantization", "surrogate_gradients",
           "surrogate_names", "Setting", "train_parallel", "units_of", "FULL_PRECISION", "weight_quant_settings", "act_quant_settings", "surrogate_settings",
           "attack_pair", "run", "write", "write_examples", "outcomes", "examples_of", "OUTCOMES", "summary", "paper_side_by_side", "comparison_table",
           "low_fpr_table", "distinct_outputs_of", "noise_floor", "noise_table", "mean_std"]
