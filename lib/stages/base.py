"""What every stage shares: `open_stage` (a notebook's setup: params validated, the executor configured, the
stage's section at the active scale, its results and figures folders), the dataset `Loader`, the 00_data stage
(`prepare_data`: raw files checked, membership splits written), a stage's model store (`store_for`, with the
section's subset splits), `train_all`, the tidy tables 01 shows (accuracies, learning curves, Table II's
full-precision rows), and every stage's headline metrics (`write_metrics`: the same few keys in each
results/<stage>/metrics.json, so that `dvc metrics show` is one short row per stage).

Each stage's own plan, run and claim tables live in its module beside this one (membership, temporal, ptq_privacy,
grad_obf, ladder, summary); a notebook is a few calls into them plus a table or figure per claim.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from ..core.progress import notebook_output, tqdm

from ..claims.verdicts import CLASS_GROUPS
from ..core import config as C
from ..core import data as D
from ..core import paper_data as PD
from ..core import executor as EX
from ..core.train import ModelStore


class Loader:
    """Loads each dataset once per process, with the 00_data settings of params.yaml."""

    def __init__(self, params: dict):
        d = params["00_data"]
        self.kw = dict(raw_dir=d["raw_dir"], cifar10_source=d["cifar10_source"],
                       mirror=D.mirror_from_env(d["mirror_env"]), tabular_test_fraction=d["tabular_test_fraction"],
                       tabular_split_seed=d["tabular_split_seed"])
        self._cache: dict[str, D.Tensors] = {}

    def __getstate__(self):   # sent to worker processes without the loaded datasets (each worker loads its own)
        return {"kw": self.kw, "_cache": {}}

    def __call__(self, name: str) -> D.Tensors:
        """`name` from lib.core.data.DATASETS, or one of the papers' own (lib.core.paper_data.PAPER_DATASETS:
        CIFAR-100, TinyImageNet-200, CIFAR10-DVS), read from raw_dir or the mirror, else downloaded; a clear
        DataError names what is missing and where to fetch it."""
        if name not in self._cache:
            if name in PD.PAPER_DATASETS:
                self._cache[name] = PD.load_paper_dataset(name, self.kw["raw_dir"], mirror=self.kw["mirror"])
            else:
                self._cache[name] = D.load(name, **self.kw)
        return self._cache[name]


def prepare_data(params: dict, loader: Loader | None = None) -> pd.DataFrame:
    """The 00_data stage: fetch and verify every dataset, write the membership splits of every seed at
    the active scale, and return one row per (dataset, seed, pool) with its size and class counts."""
    d = params["00_data"]
    loader = loader or Loader(params)
    check_raw_files(params)
    rows = []
    for name in tqdm(d["datasets"], desc="datasets"):
        t = loader(name)
        s = C.effective(params, None, name)   # 00_data writes the scale's splits; sections may take subsets
        for seed in s["seeds"]:
            split = D.make_split(t.y_train, t.y_test, seed=seed, n_in=s["n_in"], n_out=s["n_out"], mode=d["split_mode"],
                                 shadow_member_fraction=d["shadow_member_fraction"],
                                 shadow_nonmember_fraction=d["shadow_nonmember_fraction"])
            split["dataset"], split["data_source"] = name, t.source
            D.save_split(split, D.split_path(d["splits_dir"], name, seed))
            for pool_name in (*D.POOLS, "eval"):
                _, y = D.pool(t, split, pool_name)
                counts = np.bincount(y.numpy(), minlength=t.n_classes)
                rows.append({"dataset": name, "data_source": t.source, "seed": seed, "pool": pool_name,
                             "size": len(y), **{f"class_{c}": int(n) for c, n in enumerate(counts)},
                             "scale": params["scale"], "split_mode": d["split_mode"]})
    return pd.DataFrame(rows)


def check_raw_files(params: dict) -> None:
    """Fetch and MD5-verify the raw files of every image set before anything is processed; one DataError
    lists every dataset that cannot be provided."""
    d = params["00_data"]
    mirror = D.mirror_from_env(d["mirror_env"])
    problems = []
    for name in d["datasets"]:
        if name not in D.IMAGE_DATASETS:
            continue
        key = "cifar10-jpeg-standin" if name == "cifar10" and d["cifar10_source"] == "jpeg-standin" else name
        try:
            D.fetch(key, d["raw_dir"], mirror, allow_download=key != "cifar10-jpeg-standin")
        except D.DataError as err:
            problems.append(str(err))
    if problems:
        raise D.DataError("\n".join(problems))


def subset_splits(params: dict, section: str, loader: Loader) -> Path:
    """The membership splits a section trains on. Where the section reduces the members per model (`members`:
    config.effective(...)["reduced"]), each pool of 00_data's split is cut to a stratified subset of it (so the
    four pools stay disjoint and are the same examples as 00_data's), written to <checkpoints_dir>/splits, and
    the other datasets' splits are copied there too, so that one folder serves the section; else 00_data's folder."""
    from sklearn.model_selection import train_test_split
    sec = C.section(params, section)
    out = Path(sec["checkpoints_dir"]) / "splits"
    src = params["00_data"]["splits_dir"]
    eff = {ds: C.effective(params, sec, ds) for ds in sec["datasets"]}
    if not any(st["reduced"] for st in eff.values()):
        return Path(src)
    for ds, st in eff.items():
        for seed in st["seeds"]:
            path, source_path = D.split_path(out, ds, seed), D.split_path(src, ds, seed)
            if not st["reduced"]:   # at the scale's own size: a copy of 00_data's split
                D.save_split(D.load_split(source_path), path)
                continue
            origin = hashlib.sha1(D.load_split(source_path).__repr__().encode()).hexdigest()[:16]
            if path.is_file() and D.load_split(path).get("derived_from") == origin:
                continue   # still a subset of the current 00_data split
            t = loader(ds)
            split = D.load_split(source_path)
            pools = {}
            for name, n in (("target_in", st["n_in"]), ("shadow_in", st["n_in"]), ("target_out", st["n_out"]),
                            ("shadow_out", st["n_out"])):
                idx = np.array(split["pools"][name])
                y = (t.y_train if split["source"][name] == "train" else t.y_test).numpy()[idx]
                pools[name] = idx if n >= len(idx) else np.sort(
                    train_test_split(idx, train_size=n, stratify=y, random_state=seed)[0])
            new = dict(split, n_in=st["n_in"], n_out=st["n_out"], derived_from=origin,
                       pools={k: v.tolist() for k, v in pools.items()})
            new["pools"]["eval"] = sorted(set(new["pools"]["target_out"]) | set(new["pools"]["shadow_out"]))
            D.save_split(new, path)
    return out


def store_for(params: dict, section: str, read_sections=(), loader: Loader | None = None,
              splits_dir: str | Path | None = None) -> ModelStore:
    """The model cache of a stage: writes to `<section>.checkpoints_dir`, also reads earlier stages' folders.
    Its splits are `splits_dir` when given, else the section's (`subset_splits`: 00_data's, or subsets where the
    section reduces the members); its learning-curve size the section's curve_eval_size at the active scale."""
    read = [params[s]["checkpoints_dir"] for s in read_sections]
    tr = params["train"]
    loader = loader or Loader(params)
    sec = C.section(params, section)   # the active scale's values (a section without by_scale is unchanged)
    curve = (sec.get("curve_eval_size") or tr["curve_eval_size"]) if splits_dir else \
        C.effective(params, sec, sec["datasets"][0])["curve_eval_size"]   # section-wide, not per family
    return ModelStore(params[section]["checkpoints_dir"], read, data_loader=loader,
                      splits_dir=splits_dir or subset_splits(params, section, loader), device_name=tr["device"],
                      curve_eval_size=curve, eval_batch_size=tr["eval_batch_size"],
                      claim_stale_seconds=EX.Settings.from_params(params).claim_stale_seconds)


def train_all(store: ModelStore, units: list[dict]) -> list[dict]:
    """Train (or load) every unit; returns their records, in order. The missing units are trained first by the
    executor (lib.core.executor): `execution.workers` single-threaded local processes, the largest models first so
    that the workers finish together, or Ray tasks; with one local worker, here one after the other. Then every
    record is read from the store."""
    ex = EX.active()
    if units and (ex.ray or ex.workers > 1):
        todo = sorted(store.missing(units), key=lambda u: (C.family(u["dataset"]) != "image", u["kind"] != "snn"))
        store.trained += store.train_missing(todo, workers=ex.workers)
    records = []
    bar = tqdm(units, desc="models")
    for u in bar:
        bar.set_postfix_str(f"{u['dataset']} {u['kind']} seed={u['seed']}")
        records.append(store.get_or_train(u))
    return records


def accuracy_frame(records: list[dict], scale: str) -> pd.DataFrame:
    """One row per trained model: its unit's main settings and final accuracies (in %)."""
    rows = []
    for r in records:
        u = r["unit"]
        rows.append({"dataset": u["dataset"], "kind": u["kind"], "role": u["role"], "seed": u["seed"],
                     "weight_bits": u["weight_bits"], "act_bits": u["act_bits"], "act_threshold": u["act_threshold"],
                     "surrogate": u.get("surrogate"), "encoding": u.get("encoding"),
                     "train_acc": 100 * r["train_acc"], "test_acc": 100 * r["test_acc"],
                     "n_train": len(r["pools"]["in"]["labels"]), "n_test": len(r["pools"]["eval"]["labels"]),
                     "epochs": u["epochs"], "train_seconds": r["train_seconds"], "data_source": r["data_source"],
                     "scale": scale, "key": r["key"]})
    return pd.DataFrame(rows)


def curve_frame(records: list[dict]) -> pd.DataFrame:
    """Learning curves, one row per (model, epoch)."""
    rows = [{"dataset": r["unit"]["dataset"], "kind": r["unit"]["kind"], "seed": r["unit"]["seed"], "key": r["key"],
             **c} for r in records for c in r["curve"]]
    return pd.DataFrame(rows)


def mean_std_cell(values) -> str:
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return f"{values.mean():.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def full_precision_table(acc: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Table II's full-precision rows: ours (mean ± std over seeds) beside the paper's values."""
    rows = []
    for ds in acc["dataset"].unique():
        row = {"dataset": ds, "data_source": acc.loc[acc.dataset == ds, "data_source"].iloc[0]}
        for kind in ("ann", "snn"):
            sub = acc[(acc.dataset == ds) & (acc.kind == kind)]
            pap = paper[(paper.dataset == ds) & (paper.kind == kind) & (paper.method == "full precision")]
            for metric in ("train_acc", "test_acc"):
                row[f"{kind.upper()} {metric} (ours)"] = mean_std_cell(sub[metric]) if len(sub) else "—"
                if len(pap):
                    p = pap.iloc[0]
                    row[f"{kind.upper()} {metric} (paper)"] = f"{p[metric]:.2f} ± {p[metric + '_std']:.2f}"
            row[f"{kind.upper()} seeds"] = len(sub)
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")


def write_json(obj, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=float))


# ----------------------------------------------------------------------------- opening a stage in a notebook

@dataclass
class Stage:
    """What a notebook needs to run one dvc stage: the validated params, its section at the active scale,
    where its results and figures go, and the dataset loader (shared by every store it opens, e.g.
    `store_for(stage.params, stage.name, loader=stage.loader)`)."""
    name: str
    params: dict
    sec: dict
    results: Path
    figures: Path
    loader: Loader
    started: float = field(default_factory=time.perf_counter)   # time.perf_counter() when the notebook began

    @property
    def scale(self) -> str:
        return self.params["scale"]


def repository_root(start: Path | None = None) -> Path:
    """The folder holding params.yaml: the working directory or one of its parents."""
    start = Path(start or Path.cwd()).resolve()
    for p in (start, *start.parents):
        if (p / "params.yaml").is_file() and (p / "dvc.yaml").is_file():
            return p
    raise FileNotFoundError(f"no params.yaml + dvc.yaml in {start} or its parents: open the notebook inside the repository")


def open_stage(name: str, params_file: str = "params.yaml", scale: str | None = None) -> Stage:
    """The setup every notebook shares: work from the repository root (JupyterLab starts in notebooks/,
    papermill in the root), quiet the CUDA-absent messages, print warnings without machine paths
    (lib.core.progress.notebook_output), set pandas' display width, load and validate params.yaml (`scale`
    overrides its `scale`), configure the executor (`execution`), and resolve the stage's section at the active scale.
    Results go to results/<name>, figures to figures/<name> unless the section names other folders.
    The stage's clock (`Stage.started`, read by `write_metrics`) starts when this process imported `lib` (a notebook's
    imports count) the first time a stage is opened, and at this call after that."""
    import os
    import warnings
    global _first_open
    started = _lib_imported() if _first_open else time.perf_counter()
    _first_open = False
    os.chdir(repository_root())
    warnings.filterwarnings("ignore", message=".*CUDA.*")
    notebook_output()   # warnings without machine paths, torch's CUDA probe silent; in the stage's workers too
    pd.set_option("display.width", 220, "display.max_columns", 40, "display.max_colwidth", 90)
    params = C.load(params_file, scale)
    EX.configure(params)   # where this process's training units run (params.yaml: execution)
    if name not in params:
        raise C.ConfigError(f"params.yaml: no section `{name}` for this stage")
    sec = C.section(params, name)
    results = Path(sec.get("results_dir") or f"results/{name}")
    figures = Path(sec.get("figures_dir") or f"figures/{name}")
    results.mkdir(parents=True, exist_ok=True)
    return Stage(name, params, sec, results, figures, Loader(params), started)


_first_open = True


def _lib_imported() -> float:
    from .. import IMPORTED
    return IMPORTED


# ----------------------------------------------------------------------------- headline metrics (dvc metrics show)

# The keys of every results/<stage>/metrics.json, and nothing else: `dvc metrics show` prints one row per file and one
# column per distinct key, so only a small set shared by every stage fits a screen (< 120 columns with the longest
# path). 99_claims reads `scale` (lib.stages.summary.collect); `minutes` is the stage's measured time. Everything else a
# stage measured is in its results tables.
HEADLINE_KEYS = ("scale", "minutes", "models", "claims", "holds", "fails")
# verdict classes counted as `holds` and `fails`: lib.claims.verdicts.CLASS_GROUPS, the groups of notebook 99's reading;
# the other claims of a stage are open or set aside, and 99 counts every class (results/99_claims/verdict_counts.csv)
HOLDS, FAILS = CLASS_GROUPS["holds"], CLASS_GROUPS["fails"]


def model_count(*tables: pd.DataFrame) -> int:
    """How many distinct trained models the tables name: the checkpoint keys in their `key` and `*_key` columns and
    in `examples` ids of the form "<target key>/<shadow key>" (whose shadows no other column names)."""
    keys: set[str] = set()
    for t in tables:
        for col in t.columns:
            if col == "key" or col.endswith("_key"):
                keys |= set(t[col].dropna().astype(str))
            elif col == "examples":
                keys |= {k for v in t[col].dropna().astype(str) for k in v.split("/")}
    return len(keys)


def headline_metrics(scale: str, minutes: float, models: int, claims: pd.DataFrame | None = None) -> dict:
    """A stage's metrics.json: its scale, the notebook's minutes, how many trained models its results rest on and,
    for a stage with claims (its claims.csv, with the `verdict class` column), how many claims it judged, how many
    hold (supported or partly) and how many fail (contradicted, partly contradicted or mixed). The keys are
    HEADLINE_KEYS, in that order; a stage without claims (01_models) has none of the last three."""
    out = {"scale": str(scale), "minutes": round(float(minutes), 2), "models": int(models)}
    if claims is not None:
        cls = claims["verdict class"]
        out.update(claims=int(len(claims)), holds=int(cls.isin(HOLDS).sum()), fails=int(cls.isin(FAILS).sum()))
    return out


def write_metrics(stage: Stage, models: int) -> dict:
    """Every notebook's last metrics step: `headline_metrics` from the stage's clock (`Stage.started`), the models
    its results rest on and its results/<stage>/claims.csv when it has one, written to results/<stage>/metrics.json.
    Returns the dict."""
    claims_file = stage.results / "claims.csv"
    claims = pd.read_csv(claims_file) if claims_file.is_file() else None
    out = headline_metrics(stage.scale, (time.perf_counter() - stage.started) / 60, models, claims)
    write_json(out, stage.results / "metrics.json")
    return out
