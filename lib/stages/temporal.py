"""Paper B (notebook 05): input encodings (rate, Poisson-Burst, Delayed-Burst; direct = paper A's baseline)
→ accuracy, membership inference, efficiency, transfer MNIST → Fashion-MNIST, and a τ/λ sweep.

Every model is a lib.core.config.unit with `encoding` (and, in the sweep, `encoding_kwargs`) overridden, trained
once through lib.core.train.ModelStore. For each (dataset, encoding, seed) the target and the shadow model are
attacked twice:

    final  paper A §III-B: RBF SVM on the final-step output membrane U_out[T]        features [N, C]
    trace  paper B's break condition: the same SVM on the whole output-membrane trace
           (U_out[1], ..., U_out[T]) concatenated                                    features [N, T·C]

The trace is recomputed from the stored weights with the evaluation's own seed, so its last step is
exactly the stored final-step output (checked), and cached under <checkpoints>/traces/.

The section of params.yaml is `Params`; the notebook's tables, paper B's verdicts (`judge`) and its
closing reading come from the functions at the end, so the notebook is a call and a table or figure per claim.
"""
from __future__ import annotations

from functools import partial

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ..core.progress import tqdm

from ..core import config as C
from ..core import data as D
from ..attacks.mia import loss_threshold_attack, shadow_attack
from ..core.efficiency import Meter, row, spike_counts, train_step
from ..claims import verdicts as V
from .membership import OUTCOMES as _OUTCOMES, cell, outcomes
from ..claims.metrics import paired_accuracy_var
from ..core import executor as EX
from ..core.train import ModelStore, predict, unit_key, worker_store
from .temporal_params import SECTION, Params  # noqa: F401 (the section at one scale; torch-free for the validator)


def unit(params: dict, sec: Params | dict, dataset: str, encoding: str, role: str, seed: int, **extra) -> dict:
    """The SNN unit of `dataset` under `encoding` in this section (extra: encoding_kwargs, init_from, frozen).
    Members per model, epochs and batch size are the section's at the active scale (lib.core.config.effective;
    `sec`: this Params, or the section as lib.core.config.section gives it); its reduced member pools come from
    lib.stages.base.store_for (subset_splits)."""
    st = C.effective(params, sec.per_family if isinstance(sec, Params) else sec, dataset)
    return C.unit(params, dataset, "snn", role, seed, encoding=encoding, n_in=st["n_in"], n_out=st["n_out"],
                  epochs=st["epochs"], batch_size=st["batch_size"], **extra)


# ----------------------------------------------------------------------------- training with measurements

class Runner:
    """Trains (or loads) units through `store` and keeps, next to each checkpoint it trained, the run's
    efficiency measurements (<checkpoints>/efficiency/<key>.json) and the output-membrane traces
    (<checkpoints>/traces/<key>.npz). Models found in another stage's folder have no measurements (nan)."""

    def __init__(self, store: ModelStore, cache_dir: str | Path, spike_samples: int = 256, rss_interval: float = 0.01):
        self.store = store
        self.cache = Path(cache_dir)
        self.spike_samples = int(spike_samples)
        self.rss_interval = float(rss_interval)
        store.keep_traces = True   # traces come from the evaluation pass of a model trained now (no recompute)

    def _json(self, key: str) -> Path:
        return self.cache / "efficiency" / f"{key}.json"

    def get(self, u: dict) -> dict:
        """The record of unit u (trained now, inside a Meter, if no checkpoint exists)."""
        if self.store.find(u) is not None:
            return self.store.get(u)
        with Meter(self.store.dev, self.rss_interval) as m:
            rec = self.store.get_or_train(u)
        if "traces" in rec:   # get_or_train returned a fresh dict: the traces go to the cache, not the record
            self._save_traces(rec["key"], rec.pop("traces"))
        path = self._json(rec["key"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**m.result(), "train_seconds": rec["train_seconds"]}, indent=1))
        return rec

    def efficiency(self, rec: dict) -> dict:
        """Measurements of the run that trained `rec` (nan if it was trained elsewhere) and its spike counts
        per sample per layer on the first `spike_samples` examples of the eval pool (cached in the same file)."""
        path = self._json(rec["key"])
        meas = json.loads(path.read_text()) if path.is_file() else {}
        if "spikes" not in meas or "step_alloc_mb" not in meas:
            u = rec["unit"]
            data = self.store.data_loader(u["dataset"])
            split = D.load_split(D.split_path(self.store.splits_dir, u["dataset"], u["seed"]))
            (x, _), (xi, yi) = (D.pool(data, split, n) for n in ("eval", f"{u['role']}_in"))
            model = self.store.load_model(rec)
            meas["spikes"] = spike_counts(model, x[:self.spike_samples], seed=C.init_seed(u) + 3)
            meas.update(train_step(model, xi[:u["batch_size"]], yi[:u["batch_size"]], seed=C.init_seed(u)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(meas, indent=1))
        return {"key": rec["key"], "measured": "wall_seconds" in meas,
                "seconds_per_epoch": rec["train_seconds"] / rec["unit"]["epochs"], **row(meas, rec.get("device"))}

    def traces(self, rec: dict) -> dict:
        """{"in": [T, N, C], "out": [T, N, C]} output-membrane traces of the record's member / non-member pools,
        computed exactly as lib.core.train.evaluate draws its encoder noise (so their readout == the stored outputs);
        kept from the evaluation pass when the model was trained by this runner, else recomputed once."""
        path = self._traces_path(rec["key"])
        if path.is_file():
            with np.load(path) as f:
                return {"in": f["in"], "out": f["out"]}
        u = rec["unit"]
        data = self.store.data_loader(u["dataset"])
        split = D.load_split(D.split_path(self.store.splits_dir, u["dataset"], u["seed"]))
        model = self.store.load_model(rec)
        names = ("target_in", "target_out") if u["role"] == "target" else ("shadow_in", "shadow_out")
        out = {}
        for key, name in zip(("in", "out"), names):
            x, _ = D.pool(data, split, name)
            tr = predict(model, x, seed=C.init_seed(u) + 2, dev=self.store.dev, trace=True,
                         batch_size=self.store.eval_batch_size).numpy()
            last = rec["pools"][key]["outputs"]
            if not np.allclose(model.readout(torch.from_numpy(tr)).numpy(), last, atol=1e-4):
                raise RuntimeError(f"trace of {rec['key']} does not end in the stored outputs: the evaluation's "
                                   "encoder draws were not reproduced")
            out[key] = tr
        self._save_traces(rec["key"], out)
        return out

    def _traces_path(self, key: str) -> Path:
        return self.cache / "traces" / f"{key}.npz"

    def _save_traces(self, key: str, traces: dict) -> None:
        path = self._traces_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **traces)
        tmp.replace(path)


# the metric columns of the grid and sweep tables, from the per-example outcomes (lib.claims.verdicts)
OUTCOMES = {**_OUTCOMES, "trace_auc": V.Outcome("trace", "auc")}


# examples_of(frame, params): a stage's examples.csv.gz as lib.claims.verdicts.Examples with this module's OUTCOMES
examples_of = partial(V.Examples.of, outcomes=OUTCOMES)


def _correct(rec: dict) -> np.ndarray:
    ev = rec["pools"]["eval"]
    return (np.asarray(ev["outputs"]).argmax(1) == np.asarray(ev["labels"])).astype(float)


def trace_features(trace: np.ndarray) -> np.ndarray:
    """[T, N, C] output-membrane trace → [N, T·C] attack features (step-major: U[1], ..., U[T])."""
    T, N, Cc = trace.shape
    return np.ascontiguousarray(np.transpose(trace, (1, 0, 2)).reshape(N, T * Cc))


def attack(target: dict, shadow: dict, attack_params: dict, seed: int, runner: Runner | None = None):
    """Final-step shadow attack (paper A), loss threshold, and (when `runner` is given) the trace attack.
    Returns (row of metrics, {"svm" | "loss" | "trace": mia.AttackResult}) — the results for per-example outcomes."""
    t, s = target["pools"], shadow["pools"]
    kw = dict(mode=attack_params["mode"], max_train=attack_params["max_train"],
              standardize=attack_params["standardize"], seed=seed, n_boot=attack_params["n_boot"],
              shadow_in_labels=s["in"]["labels"], shadow_out_labels=s["out"]["labels"],
              target_in_labels=t["in"]["labels"], target_out_labels=t["out"]["labels"])
    svm = shadow_attack(s["in"]["outputs"], s["out"]["outputs"], t["in"]["outputs"], t["out"]["outputs"], **kw)
    row = svm.to_row()
    loss = loss_threshold_attack(t["in"]["loss"], t["out"]["loss"], seed=seed, n_boot=attack_params["n_boot"])
    results = {"svm": svm, "loss": loss}
    row["loss_auc"] = loss.auc
    row["loss_auc_se_hanley"] = loss.to_row()["auc_se_hanley"]
    if runner is not None:
        tt, ts = runner.traces(target), runner.traces(shadow)
        results["trace"] = shadow_attack(trace_features(ts["in"]), trace_features(ts["out"]), trace_features(tt["in"]),
                                         trace_features(tt["out"]), **kw)
        tr = results["trace"].to_row()
        row.update({f"trace_{k}": tr[k] for k in ("auc", "auc_ci_low", "auc_ci_high", "auc_se_hanley", "tpr_at_1pct",
                                                   "tpr_at_0_1pct", "tpr_at_1pct_status")})
    return row, results


def _base_cols(rec: dict, params: dict) -> dict:
    u = rec["unit"]
    return {"dataset": u["dataset"], "encoding": u["encoding"], "seed": u["seed"], "epochs": u["epochs"],
            "n_members": len(rec["pools"]["in"]["labels"]), "n_eval": len(rec["pools"]["eval"]["labels"]),
            "steps": u["steps"], "data_source": rec["data_source"], "scale": params["scale"],
            "split_mode": params["00_data"]["split_mode"]}


def grid_jobs(params: dict, sec: Params) -> list[tuple[str, str, int]]:
    """The main grid: (dataset, encoding, seed), each a target and a shadow model."""
    return [(ds, enc, seed) for ds in sec.datasets for enc in sec.encodings
            for seed in C.effective(params, sec.per_family, ds)["seeds"]]


def transfer_jobs(params: dict, sec: Params) -> list[tuple[str, int]]:
    """The transfer study: (encoding, seed) on the target dataset."""
    return [(enc, seed) for enc in sec.encodings
            for seed in C.effective(params, sec.per_family, sec.transfer["target"])["seeds"]]


def transfer_units(params: dict, sec: Params, enc: str, seed: int) -> tuple[dict, dict, dict]:
    """(the source-dataset target model, the target-dataset target model trained from scratch, the copy of the
    source model fine-tuned on the target dataset with `transfer.frozen` layers fixed)."""
    tr = sec.transfer
    pre = unit(params, sec, tr["source"], enc, "target", seed)
    return (pre, unit(params, sec, tr["target"], enc, "target", seed),
            unit(params, sec, tr["target"], enc, "target", seed, init_from={"dataset": tr["source"],
                                                                            "key": unit_key(pre)},
                 frozen=list(tr["frozen"])))


def sweep_jobs(params: dict, sec: Params) -> list[tuple[str, tuple, int]]:
    """The sweep: (dataset, (encoding, constant, value, encoding_kwargs), seed) at every sweep point, then the
    baseline encoding's rows (constant "none") for reference."""
    jobs = [(ds, p, seed) for ds in sec.sweep["datasets"] for p in sweep_points(params, sec)
            for seed in C.effective(params, sec.per_family, ds)["seeds"]]
    base = sec.baseline
    for ds in sec.sweep["datasets"]:
        for seed in C.effective(params, sec.per_family, ds)["seeds"]:
            jobs.append((ds, (base, "none", np.nan, dict(params["encoders"].get(base) or {})), seed))
    return jobs


def all_units(params: dict, sec: Params) -> list[dict]:
    """Every model the stage trains or reads (grid, transfer, sweep), each once, in that order."""
    out = [unit(params, sec, ds, enc, role, seed) for ds, enc, seed in grid_jobs(params, sec)
           for role in ("target", "shadow")]
    out += [u for enc, seed in transfer_jobs(params, sec) for u in transfer_units(params, sec, enc, seed)]
    out += [unit(params, sec, ds, enc, role, seed, encoding_kwargs=kw)
            for ds, (enc, _, _, kw), seed in sweep_jobs(params, sec) for role in ("target", "shadow")]
    return list({unit_key(u): u for u in out}.values())


def runner_job(cache_dir: str, spike_samples: int, rss_interval: float, spec: dict, u: dict) -> None:
    """A worker's job (train_units): unit `u` trained as Runner.get trains it here (inside a Meter, its efficiency
    file and output-membrane traces written beside the checkpoint), into the store `spec` rebuilds."""
    store = worker_store(spec)
    store.data_loader(u["dataset"])   # loaded before the Meter starts, as run_grid does: no run's memory includes it
    Runner(store, cache_dir, spike_samples, rss_interval).get(u)


def train_units(runner: Runner, params: dict, sec: Params, workers: int | None = None) -> int:
    """Train every missing model of the stage (`all_units`) with the executor before the grid, transfer and sweep
    read them: `execution.workers` single-threaded local processes (the image models first, so that the workers
    finish together), or Ray tasks; with one local worker nothing happens here and the runners train each model
    when they reach it, in this process. Each model is measured (Meter) in the process that trains it, while the
    other workers train theirs: its seconds per epoch are a single-threaded run's beside that load. Returns the
    number trained."""
    ex = EX.active()
    workers = ex.workers if workers is None else workers
    if not ex.ray and workers <= 1:
        return 0
    todo = sorted(runner.store.missing(all_units(params, sec)),
                  key=lambda u: (C.family(u["dataset"]) != "image", bool(u.get("init_from"))))
    n = runner.store.train_missing(todo, workers=workers, desc="models",
                                   job=partial(runner_job, str(runner.cache), runner.spike_samples,
                                               runner.rss_interval))
    runner.store.trained += n
    return n


def run_grid(runner: Runner, params: dict, sec: Params, *, progress: bool = True):
    """Every dataset × encoding × seed: target and shadow, both attacks, efficiency of both models.
    Returns (results: one row per dataset/encoding/seed, efficiency: one row per model, examples: the per-example
    outcomes of every row, lib.stages.membership.outcomes)."""
    jobs = grid_jobs(params, sec)
    for ds in sec.datasets:   # load data first, so that no run's memory increase includes it
        runner.store.data_loader(ds)
    rows, eff, ex = [], [], []
    for ds, enc, seed in tqdm(jobs, desc="encodings × datasets × seeds", disable=not progress):
        recs = {role: runner.get(unit(params, sec, ds, enc, role, seed)) for role in ("target", "shadow")}
        t = recs["target"]
        metrics, atks = attack(t, recs["shadow"], params["attack"], seed, runner if sec.trace_attack else None)
        ex_id = f"{t['key']}/{recs['shadow']['key']}"
        row = {**_base_cols(t, params), "train_acc": 100 * t["train_acc"], "test_acc": 100 * t["test_acc"],
               "shadow_test_acc": 100 * recs["shadow"]["test_acc"], **metrics,
               "target_key": t["key"], "shadow_key": recs["shadow"]["key"], "examples": ex_id}
        rows.append(row)
        ex.append(outcomes(t, atks, ex_id))
        for role, r in recs.items():
            eff.append({**_base_cols(r, params), "role": role, **runner.efficiency(r)})
    return pd.DataFrame(rows), pd.DataFrame(eff), pd.concat(ex, ignore_index=True)


def run_transfer(runner: Runner, params: dict, sec: Params, *, progress: bool = True) -> pd.DataFrame:
    """Per encoding and seed: the source target model (pretrained), a copy fine-tuned on the target dataset
    with the layers `transfer.frozen` fixed, and the model trained on the target dataset from scratch
    (the main grid's target model). One row per (encoding, seed) with both test accuracies."""
    tr = sec.transfer
    src, dst = tr["source"], tr["target"]
    rows = []
    for enc, seed in tqdm(transfer_jobs(params, sec), desc="transfer", disable=not progress):
        pre_u, scratch_u, ft_u = transfer_units(params, sec, enc, seed)
        pre, scratch, ft = runner.get(pre_u), runner.get(scratch_u), runner.get(ft_u)
        rows.append({**_base_cols(scratch, params), "source": src, "frozen": str(list(tr["frozen"])),
                     "source_test_acc": 100 * pre["test_acc"], "scratch_test_acc": 100 * scratch["test_acc"],
                     "transfer_test_acc": 100 * ft["test_acc"], "transfer_train_acc": 100 * ft["train_acc"],
                     "drop": 100 * (scratch["test_acc"] - ft["test_acc"]),
                     # test-set SE of that difference, paired on the same eval examples (McNemar's variance)
                     "drop_se": 100 * float(np.sqrt(paired_accuracy_var(_correct(scratch), _correct(ft)))),
                     "transfer_seconds_per_epoch": ft["train_seconds"] / ft["unit"]["epochs"],
                     "scratch_seconds_per_epoch": scratch["train_seconds"] / scratch["unit"]["epochs"],
                     "transfer_key": ft["key"], "scratch_key": scratch["key"], "source_key": pre["key"]})
    return pd.DataFrame(rows)


def sweep_points(params: dict, sec: Params) -> list[tuple[str, str, float, dict]]:
    """One-at-a-time sweep around params.yaml's constants: (encoding, constant, value, encoding_kwargs)."""
    out = []
    for enc, grid in sec.sweep.items():
        if enc == "datasets":
            continue
        base = dict(params["encoders"].get(enc) or {})
        for name, values in grid.items():
            for v in values:
                if isinstance(base.get(name), float) and isinstance(v, int):
                    v = float(v)   # 2 and 2.0 must give the same unit (and hash) as params.yaml's constant
                out.append((enc, name, v, {**base, name: v}))
    return out


def run_sweep(runner: Runner, params: dict, sec: Params, *, progress: bool = True) -> pd.DataFrame:
    """Accuracy and final-step attack AUC at every sweep point and seed (points equal to params.yaml's
    constants are the main grid's models), plus the baseline encoding's rows for reference.
    Returns (rows, examples: their per-example outcomes)."""
    rows, ex = [], []
    for ds, (enc, name, value, kw), seed in tqdm(sweep_jobs(params, sec), desc="sweep", disable=not progress):
        recs = {role: runner.get(unit(params, sec, ds, enc, role, seed, encoding_kwargs=kw))
                for role in ("target", "shadow")}
        t = recs["target"]
        default = name != "none" and (params["encoders"].get(enc) or {}).get(name) == value
        metrics, atks = attack(t, recs["shadow"], params["attack"], seed)
        ex_id = f"{t['key']}/{recs['shadow']['key']}"
        rows.append({**_base_cols(t, params), "constant": name, "value": value, "is_default": default,
                     "train_acc": 100 * t["train_acc"], "test_acc": 100 * t["test_acc"],
                     **metrics, "target_key": t["key"], "examples": ex_id})
        ex.append(outcomes(t, atks, ex_id))
    return pd.DataFrame(rows), pd.concat(ex, ignore_index=True).drop_duplicates(["id", "measure", "example"])


# ----------------------------------------------------------------------------- summaries (claims: lib.claims.registry)

def summary(df: pd.DataFrame, keys, metrics) -> pd.DataFrame:
    """Mean and std over seeds of each metric per `keys` group (plus n_seeds and data_source)."""
    g = df.groupby(list(keys), sort=False, dropna=False)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_seeds"] = g.size()
    if "data_source" in df:
        out["data_source"] = g["data_source"].first()
    return out.reset_index()


def cells(summ: pd.DataFrame, metrics) -> dict:
    """{metric: 'mean ± std' per row of a summary}: 4 digits for AUCs and TPRs, 2 for the rest."""
    return {m: [cell(a, b, 4 if "auc" in m or "tpr" in m else 2) for a, b in zip(summ[f"{m}_mean"], summ[f"{m}_std"])]
            for m in metrics}


# ----------------------------------------------------------------------------- the notebook's tables
GRID_METRICS = ("train_acc", "test_acc", "auc", "tpr_at_1pct", "trace_auc", "trace_tpr_at_1pct", "loss_auc")
EFFICIENCY_METRICS = ("seconds_per_epoch", "step_seconds", "step_alloc_mb", "step_activation_mb", "rss_increase_mb",
                      "step_rss_increase_mb", "spikes_input", "spikes_total")


def encoder_tables(params: dict, encodings, steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The spiking encoders' constants (params.yaml → encoders) and their exact expected spikes per input element
    over `steps` steps at intensities p = 0.1, 0.5, 1."""
    from ..core.encoders import build_encoder, expected_spike_count
    encs = [e for e in encodings if e != "direct"]
    consts = pd.DataFrame([{"encoding": e, **(params["encoders"].get(e) or {})} for e in encs]).set_index("encoding")
    exp = pd.DataFrame({e: {f"p = {p}": expected_spike_count(build_encoder(e, **(params["encoders"].get(e) or {})),
                                                             p, steps) for p in (0.1, 0.5, 1.0)} for e in encs}).T
    return consts, exp


def grid_summary(results: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: per dataset and encoding, mean and std over seeds of the grid's metrics and of the AUC's
    bootstrap 95% half-width."""
    metrics = [m for m in GRID_METRICS if m in results]
    return summary(results.assign(auc_ci_half=(results.auc_ci_high - results.auc_ci_low) / 2),
                   ["dataset", "encoding"], metrics + ["auc_ci_half"])


def grid_table(summ: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"data source": summ.data_source, "dataset": summ.dataset, "encoding": summ.encoding,
                         **cells(summ, ("train_acc", "test_acc", "auc", "tpr_at_1pct")),
                         "AUC 95% CI ± (bootstrap, mean)": summ.auc_ci_half_mean.round(3), "seeds": summ.n_seeds}
                        ).set_index(["dataset", "encoding"])


def trace_table(summ: pd.DataFrame) -> pd.DataFrame:
    """Final-step vs whole-trace attack AUC per dataset and encoding."""
    t = summ[["dataset", "encoding", "auc_mean", "auc_std", "trace_auc_mean", "trace_auc_std", "n_seeds"]].copy()
    t["trace − final"] = t.trace_auc_mean - t.auc_mean
    return t.round(4).set_index(["dataset", "encoding"])


def efficiency_summary(eff: pd.DataFrame) -> pd.DataFrame:
    """efficiency_summary.csv: mean and std over models per dataset and encoding; GPU peak memory and power as their
    mean, "n/a" where none was measured (efficiency.csv's "n/a" reads back as NaN)."""
    esumm = summary(eff, ["dataset", "encoding"], EFFICIENCY_METRICS)
    for g in ("gpu_peak_mem_mb", "gpu_mean_power_w"):
        esumm[g] = eff.groupby(["dataset", "encoding"], sort=False)[g].mean().to_numpy()
        esumm[g] = esumm[g].astype(object).where(esumm[g].notna(), "n/a")
    return esumm


def efficiency_table(esumm: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"data source": esumm.data_source, "dataset": esumm.dataset, "encoding": esumm.encoding,
                         **cells(esumm, EFFICIENCY_METRICS), "GPU peak MB": esumm.gpu_peak_mem_mb, "GPU mean W": esumm.gpu_mean_power_w,
                         "models": esumm.n_seeds}).set_index(["dataset", "encoding"])


def alloc_table(eff: pd.DataFrame) -> pd.DataFrame:
    """The bytes one training step allocates: distinct values over encodings and seeds per dataset and model role."""
    return eff.groupby(["dataset", "role"], sort=False).agg(
        distinct_values=("step_alloc_mb", "nunique"), step_alloc_mb=("step_alloc_mb", "first"),
        step_batch=("step_batch", "first"), models=("key", "size"))


def transfer_table(transfer: pd.DataFrame) -> pd.DataFrame:
    m = ("source_test_acc", "scratch_test_acc", "transfer_test_acc", "drop")
    ts = summary(transfer, ["encoding"], m)
    return pd.DataFrame({"encoding": ts.encoding, **cells(ts, m), "seeds": ts.n_seeds}).set_index("encoding")


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    ss = summary(sweep, ["dataset", "encoding", "constant", "value"], ["test_acc", "auc"])
    return pd.DataFrame({"dataset": ss.dataset, "encoding": ss.encoding, "constant": ss.constant, "value": ss.value,
                         **cells(ss, ("test_acc", "auc")), "seeds": ss.n_seeds})


def judge(params: dict, sec: Params, frames: dict, res_dir: str | Path, gpu: bool):
    """Paper B's claims (lib.claims.registry.paper_b) judged on this run's tables (`frames`: results, efficiency,
    transfer, sweep, as read back from their files) and per-example outcomes (<res_dir>/examples.csv.gz,
    sweep_examples.csv.gz). Returns (claims: one row per claim, detail: one row per comparison)."""
    from ..claims import registry as CL
    res, transfer, res_dir = frames["results"], frames["transfer"], Path(res_dir)
    points = [(ds, enc, const, value) for ds in sec.sweep["datasets"]      # the points run_sweep ran
              for enc, const, value, _ in sweep_points(params, sec)]
    claim_list = CL.paper_b(list(dict.fromkeys(res.dataset)), list(sec.encodings), sec.baseline,
                            params["verdicts"]["margins"], sweep=points, gpu=gpu, trace="trace_auc" in res,
                            transfer_encodings=set(transfer.encoding) if len(transfer) else ())
    examples = {"results": examples_of(pd.read_csv(res_dir / "examples.csv.gz"), params),   # paired on the same examples
                "sweep": examples_of(pd.read_csv(res_dir / "sweep_examples.csv.gz"), params)}
    return V.evaluate(frames, claim_list, examples)




def reading(results: pd.DataFrame, claims: pd.DataFrame, n_classes: dict, device, gpu: dict) -> str:
    """What limits this run's numbers, from its result files (Markdown): per dataset the models' size, the accuracy
    range over encodings against chance (those within 10 points of it named), the train − test gap and one attack's
    95% AUC interval; the verdict tally; where efficiency was measured."""
    from ..report.plots import label
    lines = []
    for ds, g in results.groupby("dataset", sort=False):
        chance = 100 / n_classes[ds]
        acc = g.groupby("encoding", sort=False).test_acc.mean()
        near = [e for e, a in acc.items() if a < chance + 10]
        ci = ((g.auc_ci_high - g.auc_ci_low) / 2).median()
        lines.append(f"* **{label(ds, g.data_source.iloc[0])}**: {int(g.n_members.iloc[0])} members per model, "
                     f"{int(g.epochs.iloc[0])} epochs, {g.seed.nunique()} seeds. Test accuracy {acc.min():.0f}–"
                     f"{acc.max():.0f}% over encodings (chance {chance:.0f}%), mean train − test gap "
                     f"{(g.train_acc - g.test_acc).mean():.0f} points (the overfitting an attack can exploit). One "
                     f"attack's 95% AUC interval is ±{ci:.3f} (median)."
                     + (f" **Near chance: {', '.join(near)}** — their AUCs say nothing about the encoder's privacy."
                        if near else ""))
    tally = claims["verdict class"].value_counts()   # the engine's class field, never the text re-parsed
    lines.append(f"* Verdicts at scale {results.scale.iloc[0]}: " + ", ".join(f"{v} × {n}" for v, n in tally.items())
                 + ". *Not resolved* is not *refuted*: more seeds or the paper scale can resolve it.")
    lines.append(f"* Efficiency was measured on {device} (GPU: {gpu['gpu']}); the memory claims are judged on the bytes "
                 "one training step allocates (exact); the GPU power claim is "
                 + ("tested with NVML." if gpu["nvml"] else "not testable here (GPU power and memory reported as n/a)."))
    return "\n".join(lines)


def raster(encoder_names, params: dict, x: torch.Tensor, intensity_range, steps: int, seed: int = 0) -> pd.DataFrame:
    """Spike events of one sample x [C, H, W] (or [F]) under each encoder, as tidy rows (encoding, neuron, t,
    intensity): the input of the rasters figure. Neurons are the flattened input elements."""
    from ..core.encoders import build_encoder, intensity
    lo, hi = intensity_range
    p = intensity(x.flatten(), lo, hi)
    rows = []
    for name in encoder_names:
        if name == "direct":
            continue
        enc = build_encoder(name, low=lo, high=hi, **(params["encoders"].get(name) or {}))
        s = enc(x.unsqueeze(0), steps, torch.Generator().manual_seed(seed))[:, 0].flatten(1)  # [T, F]
        t, n = torch.nonzero(s, as_tuple=True)
        rows.append(pd.DataFrame({"encoding": name, "neuron": n.numpy(), "t": t.numpy(),
                                  "intensity": p[n].numpy()}))
    return pd.concat(rows, ignore_index=True)


__all__ = ["SECTION", "Params", "unit", "Runner", "trace_features", "attack", "run_grid", "run_transfer", "sweep_points",
           "run_sweep", "summary", "cell", "cells", "encoder_tables", "grid_summary", "grid_table", "trace_table",
           "efficiency_summary", "efficiency_table", "alloc_table", "transfer_table", "sweep_table", "judge",
           "reading", "raster"]
