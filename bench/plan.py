"""What a run at one scale would train, what is already cached, and what the rest costs; and the checks that stop a
paper-scale run before it starts instead of hours into it. Trains nothing, builds no model, reads no dataset.

    python bench/plan.py [--scale paper] [--params params.yaml] [--no-fail] [--json FILE]
        [--results git:HEAD] [--gpu-timing results/gpu_check.json]          (make plan SCALE=paper)

1. Checks (all of them, then exit 1 if any failed; `--no-fail` prints the table anyway and exits 0):
   params.yaml validates (lib.core.config.load at the scale); every dataset the scale uses is on disk (data/raw or the
   mirror folder that 00_data.mirror_env names; at `paper` also the papers' own datasets that 06/07 list in
   `not_run`: lib.core.paper_data.paper_datasets_status); executor `ray` only where ray imports; no CUDA-only
   setting on a machine without CUDA (train.device cuda, execution.ray_gpus_per_unit > 0, a 06 `stack` > 1, which
   only pays on CUDA).
2. Units per stage, enumerated with the stages' own functions (lib.core.config.unit for 01; lib.stages.membership
   *_settings + units_of for 02-04; lib.stages.temporal.unit / sweep_points for 05 as run_grid, run_transfer,
   run_sweep call them; lib.stages.ptq_privacy.build_pool + unit for 06; lib.stages.grad_obf.load_data + unit for 07;
   lib.stages.ladder.population + units for 08; lib.stages.privacy_utility.populations + units + tuning_plan for 09). No stage has a function that lists its units without data, so the
   loops of 05 (run_grid/run_transfer/run_sweep) are repeated here, and 06/07/08 get stand-in data of the real sizes
   (empty image tensors, balanced labels): their unit keys depend on sizes, seeds and the data-source label only, so
   the keys, hence the checkpoint paths, are the real ones. A unit is counted in the first stage that trains it: a
   stage does not train what a stage in its `read_sections` (parsed from its notebook) has. `cached` = its checkpoint
   file is present in the stage's folder or a folder it reads (presence only; a corrupt file is retrained).
3. Hours. Per-unit CPU times are the training seconds the committed quick run recorded (01 accuracy.csv, 02-04
   results.csv, 05 efficiency.csv / transfer.csv, 06-09 models.csv) on this 2-core CPU; a DP-SGD unit is its own
   cost class (quant "dp": per-example gradients cost more than a plain step),
   turned into a rate per unit of work and applied to each unit's work, with bench/paper_scale_cost.py's matching
   (same configuration first, coarser matches reported there):
       work = members x epochs x T (SNN time steps; 1 for ANNs) x MFLOPs per image (06/07 only, whose nets change
              between scales: counted on torch's meta device; x the images' pixel ratio to 32x32 for other sizes)
   It is a LINEAR EXTRAPOLATION of quick-scale timings, not a measurement at paper scale. GPU-hours are "not
   measured" unless `make gpu-check` has written results/gpu_check.json on a CUDA machine; then the stages it timed
   (one paper-scale 06 ResNet, one 07 SEW-ResNet) get GPU-hours = its measured seconds per unit of work x work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lib.core import config as C   # noqa: E402  (torch-free: validation runs before anything heavy is imported)

STAGES = ["01_models", "02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
          "05_temporal_dynamics", "06_post_training_quantization", "07_gradient_sparsity", "08_attack_ladder",
          "09_privacy_utility"]
STORE_STAGES = ("01_models", "02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
                "05_temporal_dynamics", "08_attack_ladder", "09_privacy_utility")   # lib.core.train.ModelStore
GPU_TIMING = ROOT / "results" / "gpu_check.json"   # written by bench/gpu_check.py on a CUDA machine (never here)
TABULAR = ("iris", "breast_cancer")                # sklearn's, always at hand
# sizes of the papers' own datasets (train, test, input shape), used when results/00_data/datasets.csv lacks them
PAPER_SIZES = {"cifar100": (50000, 10000, "(3, 32, 32)"), "tinyimagenet": (100000, 10000, "(3, 64, 64)"),
               "cifar10dvs": (9000, 1000, "(2, 64, 64)")}
PAPER_FILES = {"cifar100": "cifar-100-python.tar.gz", "tinyimagenet": "tiny-imagenet-200.zip",
               "cifar10dvs": "CIFAR10DVS"}   # fallback presence check when lib.core.paper_data is absent


# ----------------------------------------------------------------------------- 1. checks

def cuda_available() -> bool:
    import torch
    return bool(torch.cuda.is_available())


def _used_datasets(params: dict) -> dict:
    """{dataset: [stages that use it at the active scale]} (06/07: `dataset`; at paper also their `not_run`)."""
    use = {}

    def add(ds, who):
        use.setdefault(ds, []).append(who)
    for ds in params["00_data"]["datasets"]:
        add(ds, "00_data")
    for st in STAGES[:5]:
        for ds in C.section(params, st).get("datasets") or []:
            add(ds, st)
    for st in ("06_post_training_quantization", "07_gradient_sparsity"):
        sec = C.section(params, st)
        for ds in ([sec["dataset"]] if sec.get("dataset") else []) + list(sec.get("datasets") or []):
            add(ds, st)
        if params["scale"] == "paper":
            for ds in sec.get("not_run") or []:
                add(ds, f"{st} (not_run: the paper's rows need it)")
    from lib.stages import ladder as LD
    for s in LD.settings(params, LD.Params.from_params(params)):
        for ds in s.datasets:
            add(ds, "08_attack_ladder")
    from lib.stages import privacy_utility as PU
    for ds in PU.Params.from_params(params).datasets:
        add(ds, "09_privacy_utility")
    return {ds: list(dict.fromkeys(w)) for ds, w in use.items()}


def _base_missing(ds: str, params: dict, raw_dir: Path, mirror: Path | None) -> str | None:
    """Why dataset `ds` (paper A's) is not at hand, or None: presence of its files in raw_dir or the mirror (MD5s are
    checked when 00_data loads it)."""
    from lib.core import data as D
    key = "cifar10-jpeg-standin" if ds == "cifar10" and params["00_data"]["cifar10_source"] == "jpeg-standin" else ds
    if key not in D.RAW_FILES:
        return None if ds in TABULAR else f"no loader knows `{ds}`"
    sub, items = D.RAW_FILES[key]
    for raw, _, gz, _ in items:
        if not any((d / sub / n).is_file() for d in (raw_dir, mirror) if d is not None for n in (raw, gz) if n):
            return f"{gz} not in {raw_dir / sub}" + (f" nor in the mirror {mirror / sub}" if mirror else
                                                     f" and no mirror (${params['00_data']['mirror_env']} is unset)")
    return None


def _paper_status(raw_dir: Path, mirror: Path | None) -> dict:
    """{dataset: (available, what is missing, url)} of the papers' own datasets."""
    try:
        from lib.core.paper_data import paper_datasets_status
    except ImportError:   # the loaders are not there: look for the archives the way they would
        return {ds: (any((d / f).exists() for d in (raw_dir, mirror) if d is not None), f, "") for ds, f in
                PAPER_FILES.items()}
    return {r["dataset"]: (r["available"], r["missing"], r["url"]) for r in
            paper_datasets_status(mirror=mirror, raw_dir=raw_dir)}


def check(params_file: Path, scale: str | None) -> tuple[dict | None, list[str]]:
    """(params at the scale or None, every problem found)."""
    try:
        params = C.load(params_file, scale)
    except Exception as e:   # noqa: BLE001 - ConfigError, YAML errors, a bad value: all stop the run at once
        return None, [f"params: {params_file} is invalid at scale {scale or '(its own)'}: {e}"]
    problems = []
    d = params["00_data"]
    raw_dir = Path(d["raw_dir"]) if Path(d["raw_dir"]).is_absolute() else ROOT / d["raw_dir"]
    mirror = os.environ.get(d["mirror_env"]) or None
    mirror = Path(mirror) if mirror else None
    paper = None
    for ds, who in _used_datasets(params).items():
        if ds in PAPER_SIZES:
            paper = paper or _paper_status(raw_dir, mirror)
            ok, missing, url = paper.get(ds, (False, "no loader", ""))
            urls = [u.strip() for u in (url or "").split(",") if u.strip()]
            why = None if ok else f"{missing or 'its files'} not in {raw_dir} nor in " + \
                (f"the mirror {mirror}" if mirror else f"a mirror (${d['mirror_env']} is unset)") + \
                (f"; fetch it from {urls[0]}" if urls else "") + \
                (f" and {len(urls) - 1} more (lib.core.paper_data names them)" if len(urls) > 1 else "")
        else:
            why = _base_missing(ds, params, raw_dir, mirror)
        if why:
            problems.append(f"dataset: `{ds}` (used by {', '.join(who)}) is missing: {why}")
    if (params.get("execution") or {}).get("executor") == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            problems.append("execution: executor is `ray` but ray cannot be imported here (pip install -r "
                            "requirements.txt -c requirements-lock.txt, or executor: local)")
    cuda = cuda_available()
    if not cuda:
        dev = str(params["train"]["device"])
        if dev.startswith("cuda"):
            problems.append(f"cuda: train.device is `{dev}` but this machine has no CUDA device (auto picks the CPU)")
        g = (params.get("execution") or {}).get("ray_gpus_per_unit") or 0
        if g > 0:
            ex = params["execution"]
            where = "a Ray cluster whose nodes have GPUs" if ex.get("ray_address") else "this machine, which has none"
            problems.append(f"cuda: execution.ray_gpus_per_unit is {g} but this machine has no CUDA device: every "
                            f"task waits for a GPU of {where} (executor `{ex.get('executor')}`; 0 = CPU-only tasks;"
                            " run the plan on a GPU node of the cluster)")
        stack = C.section(params, "06_post_training_quantization").get("stack")
        if stack and stack > 1:
            problems.append(f"cuda: 06_post_training_quantization.stack is {stack} at scale {params['scale']}: "
                            "stacks pay only on CUDA (0.4-0.5x the one-by-one speed on this CPU, "
                            "bench/bench_ensemble.py); null = 1 on a CPU, 16 on CUDA")
    return params, problems


# ----------------------------------------------------------------------------- 2. units

class Units:
    """Every training unit of every stage at params' scale, as bench/paper_scale_cost.py's rows (stage, part, key,
    cost-class fields, members, epochs, T, flops) plus `ckpt`: the checkpoint file(s) that would hold it."""

    def __init__(self, params: dict, sizes: dict, flops: dict):
        self.p, self.sizes, self.flops, self.rows = params, sizes, flops, []
        self.scale = params["scale"]

    def _half(self, ds: str, role: str) -> int:
        n = self.sizes[ds][0]
        return n // 2 if role == "target" else n - n // 2

    def add(self, stage: str, part: str, u: dict) -> None:
        from lib.core.train import unit_key
        snn, key = u["kind"] == "snn", unit_key(u)
        self.rows.append({
            "stage": stage, "part": part, "key": f"{u['dataset']}/{key}", "dataset": u["dataset"], "kind": u["kind"],
            "quant": "dp" if u.get("dp") else "w" if u.get("weight_bits") else ("a" if u.get("act_bits") else "fp"),
            "enc": u.get("encoding", "-") if snn else "-", "frozen": bool(u.get("frozen")),
            "batch": int(u["batch_size"]), "epochs": int(u["epochs"]), "T": int(u["steps"]) if snn else 1,
            "members": int(u["n_in"]) if u["n_in"] is not None else self._half(u["dataset"], u["role"]),
            "flops": 1.0, "net": u["kind"], "ckpt": f"{u['dataset']}/{key}.pt"})

    def s01(self):
        sec = C.section(self.p, "01_models")
        for ds in sec["datasets"]:
            for kind in sec["kinds"]:
                for seed in C.seeds(self.p, ds):
                    self.add("01_models", "targets", C.unit(self.p, ds, kind, "target", seed))

    def s_membership(self, stage: str):
        from lib.stages import membership as MB
        sec = MB.Params.from_params(self.p, stage)
        sets = {"02_activation_quantization": lambda: MB.act_quant_settings(sec, self.p),
                "03_weight_quantization": lambda: MB.weight_quant_settings(sec),
                "04_surrogate_gradients": lambda: MB.surrogate_settings(sec, self.p)}[stage]()
        for u in MB.units_of(self.p, sets):
            self.add(stage, "target + shadow", u)

    def s05(self):
        """The units of lib.stages.temporal run_grid, run_transfer and run_sweep, in their order."""
        from lib.stages import temporal as TD
        p, st = self.p, "05_temporal_dynamics"
        sec = TD.Params.from_params(p)
        seeds = lambda ds: C.effective(p, sec.per_family, ds)["seeds"]   # noqa: E731
        for ds in sec.datasets:
            for enc in sec.encodings:
                for seed in seeds(ds):
                    for role in ("target", "shadow"):
                        self.add(st, "grid", TD.unit(p, sec, ds, enc, role, seed))
        tr = sec.transfer
        src, dst = tr["source"], tr["target"]
        from lib.core.train import unit_key
        for enc in sec.encodings:
            for seed in seeds(dst):
                pre = TD.unit(p, sec, src, enc, "target", seed)
                self.add(st, "transfer", pre)
                self.add(st, "transfer", TD.unit(p, sec, dst, enc, "target", seed))
                self.add(st, "transfer", TD.unit(p, sec, dst, enc, "target", seed, frozen=list(tr["frozen"]),
                                                 init_from={"dataset": src, "key": unit_key(pre)}))
        base = sec.baseline
        pts = [(enc, kw) for enc, _, _, kw in TD.sweep_points(p, sec)] + [(base, dict(p["encoders"].get(base) or {}))]
        for ds in sec.sweep["datasets"]:
            for enc, kw in pts:
                for seed in seeds(ds):
                    for role in ("target", "shadow"):
                        self.add(st, "sweep", TD.unit(p, sec, ds, enc, role, seed, encoding_kwargs=kw))

    def _fake(self, ds: str):
        """Stand-in data of `ds`'s real sizes and source label: what the 06/07/08 unit keys depend on."""
        import torch
        from lib.core import data as D
        n_tr, n_te, _ = self.sizes[ds]
        src = {"cifar10": D.STANDIN_LABEL if self.p["00_data"]["cifar10_source"] == "jpeg-standin" else "CIFAR-10"}
        return SimpleNamespace(x_train=torch.empty(n_tr, 0), y_train=torch.arange(n_tr) % 10,
                               x_test=torch.empty(n_te, 0), y_test=torch.arange(n_te) % 10,
                               source=src.get(ds, ds), n_classes=10)

    def _big(self, stage, part, key, ds, kind, enc, batch, members, epochs, net, ckpt):
        self.rows.append({"stage": stage, "part": part, "key": key, "dataset": ds, "kind": kind, "quant": "fp",
                          "enc": enc, "frozen": False, "batch": int(batch), "members": int(members),
                          "epochs": int(epochs), "T": 1, "flops": self.flops[(self.scale, stage[:2], net)] *
                          _pixels(self.sizes[ds][2]), "net": "resnet" if stage[:2] == "06" else kind, "ckpt": ckpt})

    def s06(self):
        from lib.core.train import unit_key
        from lib.stages import ptq_privacy as PP
        P = PP.Params.from_params(self.p)
        pool = PP.build_pool(self._fake(P.dataset), P)
        for m in range(P.models):
            self._big("06_post_training_quantization", "ResNets", f"06:{m}", P.dataset, "ann", "-",
                      P.training.batch_size, pool.members(m).size, P.training.epochs, "resnet",
                      f"{P.dataset}/{unit_key(PP.unit(P, pool, m))}.pt")

    def s07(self):
        from lib.core.train import unit_key
        from lib.stages import grad_obf as G
        sec = G.Params.from_params(self.p)
        data = G.load_data(self._fake(sec.dataset), sec)
        for seed in sec.seeds:
            for spec in sec.models:
                self._big("07_gradient_sparsity", "nets", f"07:{spec.name}:{seed}", sec.dataset, spec.kind, spec.pool,
                          sec.training.batch_size, len(data.y_train), sec.training.epochs, spec.name,
                          f"{sec.dataset}/{unit_key(G.unit(sec, spec, data, seed))}.pt")

    def s08(self):
        from lib.stages import ladder as LD
        sec = LD.Params.from_params(self.p)
        sets, ap = LD.settings(self.p, sec), sec.as_published
        pops = {ds: LD.population(self._fake(ds), sec, ds) for ds in LD.datasets(sets)}
        for s in sets:
            for ds in s.datasets:
                for u in LD.units(self.p, sec, s, pops[ds]):
                    self.add("08_attack_ladder", "models", u)
                if s.id in ap.settings and ds in ap.datasets:
                    for u in LD.units(self.p, sec, s, pops[ds], LD.fractions(self.p)):
                        self.add("08_attack_ladder", "as-published shadows", u)

    def s09(self):
        """09's M models per setting (a PTQ defence reuses the reference's: counted once) and the DP-SGD tuning grid."""
        from lib.stages import privacy_utility as PU
        sec = PU.Params.from_params(self.p)
        pops = PU.populations(sec, self._fake)
        for s in sec.settings:
            if s.ptq is None:
                for ds in sec.datasets:
                    for u in PU.units(self.p, sec, s, pops[ds]):
                        self.add("09_privacy_utility", "models", u)
        for j in PU.tuning_plan(self.p, sec, pops, write=False):
            self.add("09_privacy_utility", "DP-SGD tuning", j["unit"])

    def run(self):
        import pandas as pd
        self.s01()
        for st in STAGES[1:4]:
            self.s_membership(st)
        self.s05()
        self.s06()
        self.s07()
        self.s08()
        self.s09()
        df = pd.DataFrame(self.rows)
        df["shape"] = [self.sizes[d][2] if n in ("ann", "snn") else "-" for d, n in zip(df.dataset, df.net)]
        df["work"] = df.members * df.epochs * df["T"] * df.flops
        return df


def _pixels(shape: str) -> float:
    """Pixels of an input shape "(C, H, W)" relative to 32x32 (the nets' FLOPs are counted on 32x32 images)."""
    dims = [int(x) for x in shape.strip("()").split(",") if x.strip()]
    return dims[-1] * dims[-2] / 1024 if len(dims) == 3 else 1.0


def cached(df, params: dict, reads: dict):
    """Whether each row's checkpoint file exists in its stage's folder or a folder the stage reads."""
    out = []
    for r in df.itertuples():
        dirs = [params[r.stage]["checkpoints_dir"]] + [params[s]["checkpoints_dir"] for s in reads.get(r.stage, ())]
        out.append(any((ROOT / d / r.ckpt).is_file() if not Path(d).is_absolute() else (Path(d) / r.ckpt).is_file()
                       for d in dirs))
    return df.assign(cached=out)


def plan(params: dict, results: str = "git:HEAD", gpu_timing: Path = GPU_TIMING):
    """(one row per stage: units, to train, cached, left, hours; the notes). params: at the scale to plan."""
    import numpy as np
    import pandas as pd
    import paper_scale_cost as PSC   # bench/: measured times, read_sections, FLOPs and the rate matching

    notes = []
    res = PSC.Results(results)
    sizes = {**PAPER_SIZES, **PSC.dataset_sizes(res)}
    reads = PSC.notebook_reads()
    scale = params["scale"]
    quick = params if scale == "quick" else C.load(ROOT / "params.yaml", "quick")
    flops = {**PSC.net_flops("quick"), **(PSC.net_flops(scale) if scale != "quick" else {})}
    df = cached(PSC.attribute(Units(params, sizes, flops).run(), reads), params, reads)
    q = PSC.attribute(Units(quick, sizes, flops).run(), reads) if scale != "quick" else df
    seconds, _ = PSC.measured_seconds(res)
    m = PSC.timed(q, seconds)
    est = PSC.extrapolate(df[df.new], PSC.rate_index(m))
    gpu = json.loads(gpu_timing.read_text()) if gpu_timing.is_file() else None
    rows = []
    for st in STAGES:
        s, e, mm = df[df.stage == st], est[est.stage == st], m[m.trained_by == st]
        left = e[~e.cached.to_numpy()]
        qn = q[(q.stage == st) & q.new]
        row = {"stage": st, "units": int(s.key.nunique()), "to train": int(s.new.sum()),
               "cached": int(s[s.new].cached.sum()), "left": len(left),
               "quick CPU s/unit (measured)": float(mm.seconds.mean()) if len(mm) else np.nan,
               "work ratio": float(e.work.mean() / qn.work.mean()) if len(e) and len(qn) else np.nan,
               "CPU s/unit (extrapolated)": float(e.est_seconds.mean()) if len(e) else np.nan,
               "CPU-hours all (extrapolated)": float(e.est_seconds.sum() / 3600),
               "CPU-hours left (extrapolated)": float(left.est_seconds.sum() / 3600),
               "units without a rate": int(e.est_seconds.isna().sum())}
        g = (gpu or {}).get("units", {}).get(st)
        row["GPU-hours left"] = (float((left.work * g["seconds_per_work"]).sum() / 3600) if g else "not measured")
        rows.append(row)
    table = pd.DataFrame(rows)
    repeat = df[df.new & ~df.first_anywhere]
    if len(repeat):
        first = df[df.new & df.first_anywhere].drop_duplicates("key").set_index("key").stage
        pairs = repeat.assign(first=[first[k] for k in repeat.key]).groupby(["stage", "first"]).size()
        notes.append(f"{len(repeat)} units are trained by two stages that do not read each other's checkpoints ("
                     + ", ".join(f"{s[:2]} repeats {n} of {f[:2]}'s" for (s, f), n in pairs.items())
                     + f"): counted in both, as they would be trained; {df[df.new].key.nunique()} unique across stages")
    if gpu:
        notes.append(f"GPU timings from {gpu_timing.relative_to(ROOT) if gpu_timing.is_relative_to(ROOT) else gpu_timing}"
                     f" ({gpu.get('device')}, {gpu.get('when')}): stages " + ", ".join(gpu.get("units", {})))
    return table, notes


# ----------------------------------------------------------------------------- report

def _fmt(v):
    if isinstance(v, float):
        return "—" if v != v else (f"{v:.2g}" if 0 < abs(v) < 0.1 else f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}")
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default=None, help="smoke | quick | paper (default: params.yaml's `scale`)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--no-fail", action="store_true", help="print the table even when a check fails; exit 0")
    ap.add_argument("--json", default=None, help="also write the table, notes and problems to this JSON file")
    ap.add_argument("--results", default="git:HEAD", help="the quick run whose recorded times are used: git:<rev> "
                    "(results/ as committed) or a results/ folder")
    ap.add_argument("--gpu-timing", default=str(GPU_TIMING), help="bench/gpu_check.py's measurements, if any")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")   # the stages' modules warn on import (e.g. the CIFAR-10 stand-in)
    t0 = time.perf_counter()
    params, problems = check(Path(args.params), args.scale)
    scale = params["scale"] if params else args.scale
    if problems:
        print(f"PLAN CHECKS FAILED at scale {scale}: a {scale} run would stop on these (all listed):")
        for p in problems:
            print(f"  - {p}")
    else:
        print(f"plan checks passed at scale {scale}: params.yaml valid, every dataset at hand, no CUDA-only setting "
              "on a machine without CUDA")
    out = {"scale": scale, "problems": problems, "stages": None, "notes": []}
    if params is None:
        print("(no table: params.yaml must validate first)")
        _write(args.json, out)
        return 1
    if problems and not args.no_fail:
        print("(exit 1; `--no-fail` prints the plan anyway)")
        _write(args.json, out)
        return 1
    table, notes = plan(params, args.results, Path(args.gpu_timing))
    out.update(stages=table.to_dict("records"), notes=notes)
    total = {"stage": "TOTAL", **{c: table[c].sum() for c in table.columns if c != "stage" and
                                  table[c].dtype.kind in "if"}}
    total["GPU-hours left"] = (table["GPU-hours left"].sum() if (table["GPU-hours left"] != "not measured").all()
                               else "not measured" if (table["GPU-hours left"] == "not measured").all() else "partial")
    import pandas as pd
    show = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    for c in ("work ratio", "quick CPU s/unit (measured)", "CPU s/unit (extrapolated)"):
        show.loc[show.stage == "TOTAL", c] = float("nan")
    print(f"\nTraining units at scale {scale} (enumerated with the stages' own functions; nothing trained):")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(show.map(_fmt).to_string(index=False))
    print("\nunits = distinct models the stage uses; to train = not provided by a stage it reads (read_sections); "
          "cached = of those,\ncheckpoint file present (checkpoints/<stage>/<dataset>/<key>.pt or a read stage's); "
          "left = to train - cached.\nHOURS ARE AN EXTRAPOLATION: each unit's time = the rate (seconds per unit of "
          "work) that the committed quick run measured\nfor its configuration on this 2-core CPU x its work, "
          "work = members x epochs x T (x MFLOPs per image for 06/07, whose nets grow);\nlinear in each factor "
          "(bench/paper_scale_cost.py states the matching and its limits). CPU-hours count one thread per unit: every "
          f"stage trains {params['execution']['workers']} units at once (execution.workers).\nGPU-hours: " +
          ("from results/gpu_check.json where a stage was timed there, else not measured." if
           (table["GPU-hours left"] != "not measured").any() else
           "not measured (no results/gpu_check.json: run `make gpu-check` on a CUDA machine)."))
    for n in notes:
        print(f"note: {n}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    _write(args.json, out)
    return 1 if problems and not args.no_fail else 0


def _write(path, out) -> None:
    if path:
        Path(path).write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
