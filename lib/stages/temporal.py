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
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..core import config as C
from ..core import data as D
from ..attacks.mia import loss_threshold_attack, shadow_attack
from ..core.efficiency import ALLOC_METHOD, Meter, spike_counts, train_step
from ..claims import verdicts as V
from .membership import OUTCOMES as _OUTCOMES, outcomes
from ..claims.metrics import paired_accuracy_var
from ..core.train import ModelStore, predict


# ----------------------------------------------------------------------------- settings of this section

def unit(params: dict, sec: dict, dataset: str, encoding: str, role: str, seed: int, **extra) -> dict:
    """The SNN unit of `dataset` under `encoding` in this section (extra: encoding_kwargs, init_from, frozen).
    Members per model, epochs and batch size are the section's at the active scale (lib.core.config.effective);
    its reduced member pools come from lib.stages.base.store_for (subset_splits)."""
    st = C.effective(params, sec, dataset)
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
            x, _ = D.pool(data, split, "eval")
            model = self.store.load_model(rec)
            meas["spikes"] = spike_counts(model, x[:self.spike_samples], seed=C.init_seed(u) + 3)
            xi, yi = D.pool(data, split, "target_in" if u["role"] == "target" else "shadow_in")
            meas.update(train_step(model, xi[:u["batch_size"]], yi[:u["batch_size"]], seed=C.init_seed(u)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(meas, indent=1))
        u = rec["unit"]
        nan = float("nan")
        row = {"key": rec["key"], "measured": "wall_seconds" in meas,
               "seconds_per_epoch": rec["train_seconds"] / u["epochs"],
               "wall_seconds": meas.get("wall_seconds", nan), "rss_peak_mb": meas.get("rss_peak_mb", nan),
               "rss_increase_mb": meas.get("rss_increase_mb", nan),
               "step_rss_increase_mb": meas["step_rss_increase_mb"], "step_seconds": meas["step_seconds"],
               "step_alloc_mb": meas["step_alloc_mb"], "step_activation_mb": meas["step_activation_mb"],
               "step_batch": meas["step_batch"],
               "step_alloc_method": ALLOC_METHOD,
               "gpu_peak_mem_mb": meas.get("gpu_peak_mem_mb", "n/a"),
               "gpu_mean_power_w": meas.get("gpu_mean_power_w", "n/a"), "device": rec.get("device")}
        row.update({f"spikes_{k}": v for k, v in meas["spikes"].items()})
        row["spikes_total"] = float(np.nansum([v for k, v in meas["spikes"].items()]))
        return row

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


def examples_of(frame: pd.DataFrame, params: dict) -> V.Examples:
    """Per-example outcomes (examples.csv.gz / sweep_examples.csv.gz) as lib.claims.verdicts.Examples."""
    b = params["verdicts"]["bootstrap"]
    return V.Examples(frame, OUTCOMES, n_boot=b["n_boot"], seed=b["seed"])


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


def run_grid(runner: Runner, params: dict, sec: dict, *, progress: bool = True):
    """Every dataset × encoding × seed: target and shadow, both attacks, efficiency of both models.
    Returns (results: one row per dataset/encoding/seed, efficiency: one row per model, examples: the per-example
    outcomes of every row, lib.stages.membership.outcomes)."""
    jobs = [(ds, enc, seed) for ds in sec["datasets"] for enc in sec["encodings"]
            for seed in C.effective(params, sec, ds)["seeds"]]
    for ds in sec["datasets"]:   # load data first, so that no run's memory increase includes it
        runner.store.data_loader(ds)
    rows, eff, ex = [], [], []
    for ds, enc, seed in tqdm(jobs, desc="encodings × datasets × seeds", disable=not progress):
        recs = {role: runner.get(unit(params, sec, ds, enc, role, seed)) for role in ("target", "shadow")}
        t = recs["target"]
        metrics, atks = attack(t, recs["shadow"], params["attack"], seed, runner if sec["trace_attack"] else None)
        ex_id = f"{t['key']}/{recs['shadow']['key']}"
        row = {**_base_cols(t, params), "train_acc": 100 * t["train_acc"], "test_acc": 100 * t["test_acc"],
               "shadow_test_acc": 100 * recs["shadow"]["test_acc"], **metrics,
               "target_key": t["key"], "shadow_key": recs["shadow"]["key"], "examples": ex_id}
        rows.append(row)
        ex.append(outcomes(t, atks, ex_id))
        for role, r in recs.items():
            eff.append({**_base_cols(r, params), "role": role, **runner.efficiency(r)})
    return pd.DataFrame(rows), pd.DataFrame(eff), pd.concat(ex, ignore_index=True)


def run_transfer(runner: Runner, params: dict, sec: dict, *, progress: bool = True) -> pd.DataFrame:
    """Per encoding and seed: the source target model (pretrained), a copy fine-tuned on the target dataset
    with the layers `transfer.frozen` fixed, and the model trained on the target dataset from scratch
    (the main grid's target model). One row per (encoding, seed) with both test accuracies."""
    tr = sec["transfer"]
    src, dst = tr["source"], tr["target"]
    rows = []
    jobs = [(enc, seed) for enc in sec["encodings"] for seed in C.effective(params, sec, dst)["seeds"]]
    for enc, seed in tqdm(jobs, desc="transfer", disable=not progress):
        pre = runner.get(unit(params, sec, src, enc, "target", seed))
        scratch = runner.get(unit(params, sec, dst, enc, "target", seed))
        ft = runner.get(unit(params, sec, dst, enc, "target", seed, init_from={"dataset": src, "key": pre["key"]},
                             frozen=list(tr["frozen"])))
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


def sweep_points(params: dict, sec: dict) -> list[tuple[str, str, float, dict]]:
    """One-at-a-time sweep around params.yaml's constants: (encoding, constant, value, encoding_kwargs)."""
    out = []
    for enc, grid in sec["sweep"].items():
        if enc == "datasets":
            continue
        base = dict(params["encoders"].get(enc) or {})
        for name, values in grid.items():
            for v in values:
                if isinstance(base.get(name), float) and isinstance(v, int):
                    v = float(v)   # 2 and 2.0 must give the same unit (and hash) as params.yaml's constant
                out.append((enc, name, v, {**base, name: v}))
    return out


def run_sweep(runner: Runner, params: dict, sec: dict, *, progress: bool = True) -> pd.DataFrame:
    """Accuracy and final-step attack AUC at every sweep point and seed (points equal to params.yaml's
    constants are the main grid's models), plus the baseline encoding's rows for reference.
    Returns (rows, examples: their per-example outcomes)."""
    rows, ex = [], []
    jobs = [(ds, p, seed) for ds in sec["sweep"]["datasets"] for p in sweep_points(params, sec)
            for seed in C.effective(params, sec, ds)["seeds"]]
    base = sec["baseline"]
    for ds in sec["sweep"]["datasets"]:
        for seed in C.effective(params, sec, ds)["seeds"]:
            jobs.append((ds, (base, "none", np.nan, dict(params["encoders"].get(base) or {})), seed))
    for ds, (enc, name, value, kw), seed in tqdm(jobs, desc="sweep", disable=not progress):
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


def cell(mean, std, digits=2) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


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


__all__ = ["unit", "Runner", "trace_features", "attack", "run_grid", "run_transfer",
           "sweep_points", "run_sweep", "summary", "cell", "paired", "verdict", "comparisons", "claim_verdict",
           "PAPER_B_CLAIMS", "claims", "claim_summary", "raster"]
