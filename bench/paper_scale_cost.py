"""What paper scale costs: training units per stage at `scale: paper`, and CPU-hours extrapolated from the per-unit
training times that the committed `quick` run recorded on this 2-core CPU. Trains nothing, writes one CSV.

    .venv/bin/python bench/paper_scale_cost.py [--detail]
        [--gpu-seconds-per-unit STAGE=SECONDS ...] [--gpu-results DIR] [--gpu-speedup X]

1. Units. Every stage's models are enumerated with the functions its notebook calls (lib.core.config.unit,
   lib.stages.membership *_settings + units_of, lib.stages.temporal.unit / sweep_points, lib.stages.ladder
   settings / population / units, the keep matrix of lib.stages.ptq_privacy, the nets × seeds of
   lib.stages.grad_obf), at `quick` and at `paper`. Units of 01-05 and 08 share one key space
   (lib.core.train.unit_key): a stage trains a unit unless it (or a stage it reads, as its notebook's
   `read_sections`) already has it. 06 and 07 have their own nets. The quick counts are checked against the
   committed run (the "trained now" line of each executed notebook, and the keys in results/<stage>/*.csv).
2. Cost. The committed quick run recorded each model's training seconds (results/01_models/accuracy.csv,
   results/0[2-4]/results.csv target_/shadow_seconds, results/05/efficiency.csv + transfer.csv,
   results/06/models.csv, results/07/models.csv, results/08/models.csv). Each is turned into a rate per unit of work,
   work = members x epochs x T (T = time steps for SNNs, 1 for ANNs) x FLOPs per sample (06/07 only: their nets
   change between quick and paper; the ConvNet/FCNet of 01-05/08 do not). A paper unit's time = the median rate of
   the quick units of the same configuration (dataset, kind, quantization, encoding, transfer, batch size; same
   stage first) x its own work. LINEAR EXTRAPOLATION: it ignores batch-size efficiency, fixed per-epoch costs,
   cache effects, and (06/07) how far FLOPs predict time for a wider/deeper net on this CPU. Where no quick unit
   has the configuration, a coarser match is used and reported (`basis`); quantized image nets, never trained at
   quick, get a PROXY rate (their full-precision rate x the quantized/full-precision ratio measured on the tables).
   Model training only: attacks, PTQ copies and evaluation are listed, not extrapolated.
3. GPU. Nothing was measured on a GPU. GPU-hours are printed only from what you pass: --gpu-results (a quick run's
   results/ made on the GPU: rates per configuration, extrapolated exactly as the CPU's), --gpu-seconds-per-unit
   STAGE=S (mean training seconds per unit of that stage in a quick run on the GPU, i.e. the mean of its
   train_seconds; applied as the ratio to this CPU's mean), or --gpu-speedup X (an ASSUMED factor, labelled so).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import io
import re
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from lib.stages import ptq_privacy as PP       # noqa: E402
from lib.core import config as C                # noqa: E402
from lib.core import data as D                  # noqa: E402
from plan import STAGES, STORE_STAGES, Units    # noqa: E402  (bench/plan.py: the stages and the units of each)

SHORT = {s: s[:2] for s in STAGES}
# what each notebook passes as read_sections (parsed from notebooks/ below; these are the fallback)
READS_FALLBACK = {"01_models": (), "02_activation_quantization": ("01_models",),
                  "03_weight_quantization": ("01_models", "02_activation_quantization"),
                  "04_surrogate_gradients": ("01_models", "02_activation_quantization", "03_weight_quantization"),
                  "05_temporal_dynamics": ("01_models",), "08_attack_ladder": (), "09_privacy_utility": ()}
# the "trained now" line each executed notebook prints
TRAINED_NOW = {"01_models": r"(\d+) models trained now", "02_activation_quantization": r"(\d+) models trained now",
               "03_weight_quantization": r"(\d+) models trained now", "04_surrogate_gradients": r"(\d+) models trained now",
               "05_temporal_dynamics": r"\((\d+) models trained in this run\)",
               "06_post_training_quantization": r"(\d+) models trained now", "07_gradient_sparsity": r"(\d+) nets trained now",
               "08_attack_ladder": r"trained (\d+) models", "09_privacy_utility": r"trained (\d+) models"}
# published sizes, used only when results/00_data/datasets.csv is missing
SIZES_FALLBACK = {"mnist": (60000, 10000, "(1, 28, 28)"), "fmnist": (60000, 10000, "(1, 28, 28)"),
                  "cifar10": (50000, 10000, "(3, 32, 32)"), "iris": (120, 30, "(4,)"), "breast_cancer": (455, 114, "(30,)")}
NOTES: list[str] = []


def note(msg: str) -> None:
    if msg not in NOTES:
        NOTES.append(msg)


# ----------------------------------------------------------------------------- inputs from the repository

class Results:
    """A run's results/ folder: `git:<rev>` reads the files committed at <rev> (default git:HEAD, the committed quick
    run, untouched by whatever a working tree has rerun since), anything else is a folder on disk."""

    def __init__(self, where: str):
        self.where = where
        self.rev = where[4:] if where.startswith("git:") else None
        self.folder = None if self.rev else Path(where)

    def text(self, rel: str) -> str | None:
        if self.folder is not None:
            f = self.folder / rel
            return f.read_text() if f.is_file() else None
        r = subprocess.run(["git", "-C", str(ROOT), "show", f"{self.rev}:results/{rel}"], capture_output=True)
        return r.stdout.decode() if r.returncode == 0 else None

    def csv(self, rel: str) -> pd.DataFrame | None:
        t = self.text(rel)
        return None if t is None else pd.read_csv(io.StringIO(t))


def dataset_sizes(results: Results) -> dict:
    d = results.csv("00_data/datasets.csv")
    if d is not None:
        return {r.dataset: (int(r.train), int(r.test), str(r.input_shape)) for r in d.itertuples()}
    note("results/00_data/datasets.csv missing: dataset sizes are the published ones (train/test)")
    return dict(SIZES_FALLBACK)


def notebook_reads() -> dict:
    """read_sections of each ModelStore stage, from its source notebook (fallback: READS_FALLBACK)."""
    out = {}
    for st in STORE_STAGES:
        nb = ROOT / "notebooks" / f"{st}.ipynb"
        try:
            cells = json.loads(nb.read_text())["cells"]
            src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        except (OSError, ValueError):
            out[st] = READS_FALLBACK[st]
            note(f"notebooks/{st}.ipynb unreadable: its read_sections taken as {READS_FALLBACK[st]}")
            continue
        m = re.search(r"READS\s*=\s*(\(.*?\))", src) or re.search(r"read_sections\s*=\s*(\[.*?\])", src)
        out[st] = tuple(ast.literal_eval(m.group(1))) if m else ()
        if tuple(out[st]) != READS_FALLBACK[st]:
            note(f"{st}: read_sections in the notebook are {out[st]} (script's fallback {READS_FALLBACK[st]})")
    return out


def trained_now_committed(results: Results) -> dict:
    """The 'N models trained now' of each executed notebook (committed quick run)."""
    out = {}
    for st, pat in TRAINED_NOW.items():
        nb = results.text(f"{st}/{st}.ipynb")
        if nb is None:
            continue
        text = []
        for c in json.loads(nb)["cells"]:
            for o in c.get("outputs", []):
                d = o.get("data") or {}
                t = o.get("text") or d.get("text/markdown") or d.get("text/plain") or ""
                text.append("".join(t))
        m = re.findall(pat, "\n".join(text))
        if m:
            out[st] = int(m[-1])
    return out


def stage_minutes(results: Results) -> dict:
    out = {}
    for st in STAGES:
        nb = results.text(f"{st}/{st}.ipynb")
        if nb is not None:
            d = json.loads(nb)["metadata"].get("papermill", {}).get("duration")
            if d:
                out[st] = d / 60
    return out


def measured_seconds(results: Results) -> tuple[dict, dict]:
    """{key: training seconds} from a run's results/ folder, and {stage: set of keys its files list}. Keys of 06 are
    '06:<model index>', of 07 '07:<net name>:<seed>' (their results name no unit key)."""
    sec, listed = {}, defaultdict(set)

    read = results.csv

    a = read("01_models/accuracy.csv")
    if a is not None:
        for r in a.itertuples():
            sec[r.key] = float(r.train_seconds)
            listed["01_models"].add(r.key)
    for st in ("02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients"):
        r_ = read(f"{st}/results.csv")
        if r_ is None:
            continue
        for r in r_.itertuples():
            sec[r.target_key], sec[r.shadow_key] = float(r.target_seconds), float(r.shadow_seconds)
            listed[st] |= {r.target_key, r.shadow_key}
    e = read("05_temporal_dynamics/efficiency.csv")
    if e is not None:
        for r in e.itertuples():
            sec[r.key] = float(r.seconds_per_epoch) * int(r.epochs)
            listed["05_temporal_dynamics"].add(r.key)
    t = read("05_temporal_dynamics/transfer.csv")
    if t is not None:
        for r in t.itertuples():
            sec[r.transfer_key] = float(r.transfer_seconds_per_epoch) * int(r.epochs)
            listed["05_temporal_dynamics"] |= {r.transfer_key, r.scratch_key, r.source_key}
    s = read("05_temporal_dynamics/sweep.csv")
    if s is not None:   # no seconds and no shadow keys in sweep.csv: the sweep's targets are listed only
        listed["05_temporal_dynamics"] |= set(s.target_key)
    m = read("06_post_training_quantization/models.csv")
    if m is not None:
        for r in m.itertuples():
            sec[f"06:{int(r.model)}"] = float(r.train_seconds)
            listed["06_post_training_quantization"].add(f"06:{int(r.model)}")
    g = read("07_gradient_sparsity/models.csv")
    if g is not None:
        for r in g.itertuples():
            sec[f"07:{r.model}:{int(r.seed)}"] = float(r.train_seconds)
            listed["07_gradient_sparsity"].add(f"07:{r.model}:{int(r.seed)}")
    for st in ("08_attack_ladder", "09_privacy_utility"):
        ld = read(f"{st}/models.csv")
        if ld is not None:
            for r in ld.itertuples():
                sec[r.key] = float(r.train_seconds)
                listed[st].add(r.key)
    return sec, listed


# ----------------------------------------------------------------------------- enumeration of units

class Enum(Units):
    """Every unit of every stage at one scale, as rows (stage, part, key, cost-class fields, work): bench/plan.py's
    Units (the stages' own unit functions), plus the PTQ copies of 06 that this report lists beside the training."""

    def __init__(self, scale: str, sizes: dict, flops: dict):
        super().__init__(C.load(ROOT / "params.yaml", scale), sizes, flops)
        self.params = self.p

    def s06(self):
        super().s06()
        P = PP.Params.from_params(self.p)
        self.ptq_jobs = PP.ptq_jobs(P)
        self.ptq_adaptive = PP.ptq_jobs(P, targets=range(P.models), runs=1, grid=False, methods=P.adaptive.methods,
                                        bits=P.adaptive.bits)
        self.ptq_iters = dict(P.ptq.iters)


def net_flops(scale: str) -> dict:
    """Forward FLOPs per image (MFLOP, 2 x multiply-adds of every Conv2d and Linear, SNNs over their T steps) of the
    nets of 06 and 07 at `scale`, built and run on torch's `meta` device (shapes only: no weights, no arithmetic).
    Only their ratio quick → paper is used."""
    import torch
    from torch import nn
    from lib.stages import grad_obf as G
    from lib.core import resnet as R

    def count(make) -> float:
        with torch.device("meta"):
            net = make()
        tot = [0]

        def conv(m, i, o):
            tot[0] += 2 * o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

        def lin(m, i, o):
            tot[0] += 2 * o.numel() * m.in_features
        for mod in net.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.register_forward_hook(conv if isinstance(mod, nn.Conv2d) else lin)
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, 32, 32, device="meta"))
        return tot[0] / 1e6

    p = C.load(ROOT / "params.yaml", scale)
    s6, s7 = C.section(p, "06_post_training_quantization"), C.section(p, "07_gradient_sparsity")
    out = {(scale, "06", "resnet"): count(lambda: R.ResNet(**{**s6["arch"], "n_classes": 10}))}
    s7 = G.Params.from_params(p)   # build reads the section's attributes
    for spec in s7.models:
        out[(scale, "07", spec.name)] = count(lambda spec=spec: G.build(s7, spec, 10, 0))
    return out


# ----------------------------------------------------------------------------- who trains what

def attribute(df: pd.DataFrame, reads: dict) -> pd.DataFrame:
    """Per row: `new` = the stage trains it (first time in this stage, and no earlier stage it reads trains it),
    `trained_by` = the stage whose checkpoint it is, `first_anywhere` = the first row of its key in any stage."""
    owner, seen_stage, seen_any = {}, set(), set()
    new, by, first = [], [], []
    for r in df.itertuples():
        k, st = r.key, r.stage
        first.append(k not in seen_any)
        seen_any.add(k)
        if (st, k) in seen_stage:
            new.append(False), by.append(owner.get((st, k), st))
            continue
        seen_stage.add((st, k))
        src = next((s for s in reads.get(st, ()) if (s, k) in owner), None)
        if src is not None:
            owner[(st, k)] = owner[(src, k)]
            new.append(False), by.append(owner[(src, k)])
        else:
            owner[(st, k)] = st
            new.append(True), by.append(st)
    return df.assign(new=new, trained_by=by, first_anywhere=first)


# ----------------------------------------------------------------------------- rates and extrapolation

LEVELS = [  # (label, fields); "stage" = the stage that trained the quick unit / that needs the paper unit
    ("same stage and configuration", ("stage", "shape", "kind", "quant", "enc", "frozen", "batch", "net")),
    ("same configuration, other stage", ("shape", "kind", "quant", "enc", "frozen", "batch", "net")),
    ("other encoding, same batch size", ("shape", "kind", "quant", "frozen", "batch", "net")),
    ("same encoding, other batch size / members", ("shape", "kind", "quant", "enc", "frozen", "net")),
    ("other encoding and batch size", ("shape", "kind", "quant", "frozen", "net")),
    ("other encoding, batch size and transfer setting", ("shape", "kind", "quant", "net")),
]
PROXY_LABEL = "PROXY: full-precision twin's rate (matched as above) x the tables' quantized/FP ratio"
PROXY = len(LEVELS)


def timed(q: pd.DataFrame, seconds: dict) -> pd.DataFrame:
    """The quick units a stage trained that have a recorded time, with their rate (seconds per unit of work)."""
    m = q[q.new].copy()
    m["seconds"] = [seconds.get(k.split("/", 1)[-1]) for k in m.key]
    m = m[m.seconds.notna()].copy()
    m["rate"] = m.seconds / m.work
    m["stage"] = m.trained_by
    return m


def rate_index(m: pd.DataFrame) -> dict:
    """Median rate of the timed quick units at every level's fields, and the quantized / full-precision rate ratio
    measured on the tables (per kind and quantization; median over stages and data sets)."""
    idx = {}
    for lvl, (_, fields) in enumerate(LEVELS):
        for key, g in m.groupby(list(fields)):
            idx[(lvl, key if isinstance(key, tuple) else (key,))] = (float(g.rate.median()), len(g))
    tab = m[~m.dataset.isin(D.IMAGE_DATASETS) & (m.enc.isin(["-", "direct"])) & ~m.frozen]
    med = tab.groupby(["stage", "dataset", "kind", "quant"]).rate.median()
    for (st, ds, kind, qt), r in med.items():
        if qt != "fp" and (st, ds, kind, "fp") in med.index:
            idx.setdefault(("qratio", kind, qt), []).append(r / med[(st, ds, kind, "fp")])
    for k in [k for k in idx if k[0] == "qratio"]:
        idx[k] = (float(np.median(idx[k])), len(idx[k]))
    return idx


def extrapolate(pp: pd.DataFrame, idx: dict) -> pd.DataFrame:
    """Each paper unit's seconds = rate of the first level that matches x its work. A quantized unit that matches no
    level takes its full-precision twin's rate x the quantized/full-precision ratio of the tables (basis PROXY;
    `lower_seconds` = without that ratio)."""
    def match(rr):
        for lvl, (_, fields) in enumerate(LEVELS):
            hit = idx.get((lvl, tuple(rr[f] for f in fields)))
            if hit is not None:
                return lvl, hit[0]
        return None

    est, basis, lower = [], [], []
    for r in pp.itertuples():
        rr = r._asdict()
        hit, factor, lvl = match(rr), 1.0, None
        if hit is not None:
            lvl, rate = hit
        elif r.quant != "fp" and ("qratio", r.kind, r.quant) in idx:
            hit = match({**rr, "quant": "fp"})
            if hit is not None:
                lvl, rate, factor = PROXY, hit[1], idx[("qratio", r.kind, r.quant)][0]
        if lvl is None:
            est.append(np.nan), basis.append(-1), lower.append(np.nan)
        else:
            est.append(rate * r.work * factor), basis.append(lvl), lower.append(rate * r.work)
    return pp.assign(est_seconds=est, basis=basis, lower_seconds=lower)


def setup_spread(m: pd.DataFrame) -> list[str]:
    """Image nets that the quick run trained in more than one setup (stage, members, epochs, batch): their rates side
    by side. A paper unit's setup differs from every quick one, so this spread is a floor on the extrapolation's error."""
    img = m[m.dataset.isin(D.IMAGE_DATASETS) & ~m.frozen & (m.net.isin(["ann", "snn"]))]
    lines = []
    for (ds, kind, qt, enc), g in img.groupby(["dataset", "kind", "quant", "enc"]):
        setups = g.groupby(["stage", "batch"]).agg(rate=("rate", "median"), members=("members", "median"),
                                                   epochs=("epochs", "median"), T=("T", "first"))
        if len(setups) < 2:
            continue
        ref = setups.rate.min()
        parts = [f"{SHORT[st]} ({int(r.members)} members x {int(r.epochs)} ep, batch {b}) "
                 f"{1e6 * r.rate:.0f} us (x{r.rate / ref:.2f})" for (st, b), r in setups.iterrows()]
        unit = "member-epoch-step" if kind == "snn" else "member-epoch"
        lines.append(f"  {ds} {kind} {enc if enc != '-' else ''} per {unit}: " + "; ".join(parts))
    return lines


# ----------------------------------------------------------------------------- report

def fmt(x, d=1):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:,.{d}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="git:HEAD",
                    help="the quick run whose recorded times are used: git:<rev> = results/ as committed at <rev> "
                         "(default git:HEAD), or a results/ folder")
    ap.add_argument("--csv", default=str(ROOT / "bench" / "paper_scale_cost.csv"))
    ap.add_argument("--detail", action="store_true", help="also print the paper units per configuration and basis")
    ap.add_argument("--gpu-seconds-per-unit", action="append", default=[], metavar="STAGE=SECONDS",
                    help="mean training seconds per unit of STAGE (01 ... 08 or the stage name) in a quick run on your "
                         "GPU, i.e. the mean of that run's per-model train_seconds for the stage (this script prints "
                         "the CPU's as 'quick CPU s/unit'); GPU-hours = paper CPU-hours x SECONDS / CPU s/unit")
    ap.add_argument("--gpu-results", default=None,
                    help="results/ folder of a quick run made on the GPU (same params.yaml): its recorded seconds "
                         "give per-configuration rates, extrapolated exactly as the CPU's")
    ap.add_argument("--gpu-speedup", type=float, default=None,
                    help="an ASSUMED GPU speed-up over this CPU (not measured): GPU-hours = CPU-hours / X")
    args = ap.parse_args()
    t_start = time.perf_counter()
    results = Results(args.results)

    from plan import PAPER_SIZES   # the papers' own datasets (06/07 at paper run CIFAR-100): published sizes
    sizes = {**PAPER_SIZES, **dataset_sizes(results)}
    note("data/ is not read" + (" (absent here)" if not (ROOT / "data").is_dir() else "") + ": units come from "
         "params.yaml and the data set sizes (results/00_data/datasets.csv); 08's populations are drawn on balanced "
         "stand-in labels of those sizes (a unit depends on the sizes only)")
    reads = notebook_reads()
    flops = {**net_flops("quick"), **net_flops("paper")}
    enum = {sc: Enum(sc, sizes, flops) for sc in ("quick", "paper")}
    df = {sc: attribute(e.run(), reads) for sc, e in enum.items()}
    seconds, listed = measured_seconds(results)
    committed_now = trained_now_committed(results)
    minutes = stage_minutes(results)
    q, pp = df["quick"], df["paper"]

    # ---------------------------------------------------------------- 1. units
    bar = "=" * 118
    print(bar)
    print("WHAT PAPER SCALE COSTS. 1. Training units per stage (enumerated with the notebooks' own functions; trains nothing)")
    print(bar)
    print("units = models the stage uses; trained = not already in its own or a read stage's checkpoints "
          "(read_sections as in the notebooks).\nquick is checked against the committed quick run: the executed "
          "notebook's 'trained now' line, and the unit keys its results files list.")
    rows = []
    for st in STAGES:
        qs, ps = q[q.stage == st], pp[pp.stage == st]
        qkeys = set(k.split("/", 1)[-1] for k in qs.key)
        lst = listed.get(st, set())
        rows.append({"stage": st, "quick units": qs.key.nunique(), "quick trained": int(qs.new.sum()),
                     "committed trained now": committed_now.get(st),
                     "committed keys found": f"{len(qkeys & lst)}/{len(qkeys)}",
                     "committed keys not enumerated": len(lst - qkeys),
                     "paper units": ps.key.nunique(), "paper trained": int(ps.new.sum())})
        if committed_now.get(st) is not None and committed_now[st] != int(qs.new.sum()):
            note(f"{st}: quick count {int(qs.new.sum())} trained != {committed_now[st]} in the committed notebook")
        if lst - qkeys:
            note(f"{st}: {len(lst - qkeys)} keys in the committed results are not in the quick enumeration")
    ut = pd.DataFrame(rows)
    ut = pd.concat([ut, pd.DataFrame([
        {"stage": "sum of stages", "quick units": ut["quick units"].sum(), "quick trained": ut["quick trained"].sum(),
         "committed trained now": sum(committed_now.values()), "committed keys found": "",
         "committed keys not enumerated": ut["committed keys not enumerated"].sum(),
         "paper units": ut["paper units"].sum(), "paper trained": ut["paper trained"].sum()},
        {"stage": "unique across stages", "quick units": q.key.nunique(), "quick trained": q.key.nunique(),
         "committed trained now": None, "committed keys found": "", "committed keys not enumerated": None,
         "paper units": pp.key.nunique(), "paper trained": pp.key.nunique()}])], ignore_index=True)
    for c in ("committed trained now", "committed keys not enumerated"):
        ut[c] = [("—" if pd.isna(v) else int(v)) for v in ut[c]]
    print(ut.to_string(index=False, na_rep="—"))
    parts = pp[pp.new].groupby(["stage", "part"], sort=False).size()
    print("\npaper units trained, by part: " + "; ".join(f"{SHORT[s]} {p} {n:,}" for (s, p), n in parts.items()))
    dup = pp[pp.new & ~pp.first_anywhere]
    if len(dup):
        first = pp[pp.new & pp.first_anywhere].drop_duplicates("key").set_index("key").stage
        src = dup.assign(first=[first[k] for k in dup.key]).groupby(["stage", "first"]).size()
        print(f"paper: {len(dup):,} of them are trained a second time by a stage that does not read the stage that "
              "trained them first (" + ", ".join(f"{SHORT[s]} repeats {n} of {SHORT[f]}'s" for (s, f), n in src.items())
              + "); with one shared checkpoint cache the sum would be the unique count")
    q5 = q[(q.stage == "05_temporal_dynamics") & q.new]
    k5 = [k.split("/", 1)[-1] for k in q5.key]
    if "05_temporal_dynamics" in listed:
        unlisted = sum(k not in listed["05_temporal_dynamics"] for k in k5)
        note(f"05: sweep.csv lists the sweep's target keys only (no shadow keys, no seconds): {unlisted} "
             f"quick units cannot be found in results/, {sum(k not in seconds for k in k5)} have no recorded time "
             "(the rate of their configuration is used)")

    # ---------------------------------------------------------------- 2. cost
    m = timed(q, seconds)
    idx = rate_index(m)
    est = extrapolate(pp[pp.new], idx)
    est["same"] = (est.basis <= 1) & (est.flops == 1.0)          # same configuration, same net
    est["scaled_net"] = est.flops != 1.0                          # 06/07: another (wider, deeper) net, FLOP-scaled
    # every training stage runs its units in execution.workers single-threaded processes (issue 26)
    workers = int((enum["paper"].params.get("execution") or {}).get("workers") or 1)
    gpu_stage = {}
    for item in args.gpu_seconds_per_unit:
        k, _, v = item.partition("=")
        st = next((s for s in STAGES if s == k or s[:2] == k), None)
        if st is None or not v:
            ap.error(f"--gpu-seconds-per-unit {item!r}: expected STAGE=SECONDS, STAGE one of {[s[:2] for s in STAGES]}")
        gpu_stage[st] = float(v)
    gpu_est = None
    if args.gpu_results:
        gsec, _ = measured_seconds(Results(args.gpu_results))
        gpu_est = extrapolate(pp[pp.new], rate_index(timed(q, gsec)))

    print("\n" + bar)
    print("2. Cost: training seconds per unit recorded by the committed quick run on this 2-core CPU (no GPU), "
          "extrapolated LINEARLY\n   to paper size (work = members x epochs x T, x FLOPs per image for 06/07)")
    print(bar)
    rows = []
    for st in STAGES:
        e, mm = est[est.stage == st], m[m.trained_by == st]
        n_q = int(((q.stage == st) & q.new).sum())
        cpu_h = e.est_seconds.sum() / 3600
        mean_q = mm.seconds.mean() if len(mm) else np.nan
        row = {"stage": st, "paper units": len(e), "quick CPU s/unit": mean_q,
               "work ratio": e.work.mean() / q[(q.stage == st) & q.new].work.mean(),
               "paper CPU s/unit": e.est_seconds.mean(), "paper CPU-hours": cpu_h,
               "paper wall-hours (this machine)": cpu_h / workers}
        if gpu_est is not None:
            ge = gpu_est[gpu_est.stage == st].est_seconds
            row["GPU-hours (--gpu-results)"] = ge.sum() / 3600 if ge.notna().all() else np.nan
        if gpu_stage:
            row["GPU-hours (--gpu-seconds-per-unit)"] = cpu_h * gpu_stage[st] / mean_q if st in gpu_stage else np.nan
        if args.gpu_speedup:
            row[f"GPU-hours (ASSUMED {args.gpu_speedup:g}x speed-up)"] = cpu_h / args.gpu_speedup
        elif gpu_est is None and not gpu_stage:
            row["GPU-hours"] = "not measured"
        row.update({"quick units timed": f"{len(mm)}/{n_q}",
                    "% hours same config": 100 * e[e.same].est_seconds.sum() / 3600 / cpu_h if cpu_h else np.nan,
                    "% hours FLOP-scaled net": 100 * e[e.scaled_net].est_seconds.sum() / 3600 / cpu_h if cpu_h else np.nan,
                    "% hours PROXY": 100 * e[e.basis == PROXY].est_seconds.sum() / 3600 / cpu_h if cpu_h else np.nan,
                    "PROXY lower-bound CPU-hours": (e.est_seconds.sum() - e[e.basis == PROXY].est_seconds.sum()
                                                    + e[e.basis == PROXY].lower_seconds.sum()) / 3600,
                    "units without a rate": int(e.est_seconds.isna().sum()),
                    "workers": workers, "quick stage min": minutes.get(st, np.nan),
                    "quick training min": mm.seconds.sum() / 60 / workers if len(mm) else np.nan})
        rows.append(row)
    ct = pd.DataFrame(rows)
    tot = {"stage": "TOTAL", "paper units": ct["paper units"].sum(), "paper CPU-hours": ct["paper CPU-hours"].sum(),
           "paper wall-hours (this machine)": ct["paper wall-hours (this machine)"].sum(),
           "% hours same config": 100 * est[est.same].est_seconds.sum() / est.est_seconds.sum(),
           "% hours FLOP-scaled net": 100 * est[est.scaled_net].est_seconds.sum() / est.est_seconds.sum(),
           "% hours PROXY": 100 * est[est.basis == PROXY].est_seconds.sum() / est.est_seconds.sum(),
           "PROXY lower-bound CPU-hours": ct["PROXY lower-bound CPU-hours"].sum(),
           "units without a rate": ct["units without a rate"].sum(),
           "quick stage min": sum(minutes.get(s, 0) for s in STAGES), "quick training min": ct["quick training min"].sum(),
           "quick units timed": f"{len(m)}/{int(q.new.sum())}"}
    for c in ct.columns:
        if c.startswith("GPU-hours"):
            tot[c] = "not measured" if c == "GPU-hours" else (ct[c].sum() if ct[c].notna().all() else np.nan)
    ct = pd.concat([ct, pd.DataFrame([tot])], ignore_index=True)
    show = ct.copy()
    for c in show.columns:
        if show[c].dtype.kind == "f":
            d = 1 if c in ("quick CPU s/unit", "work ratio", "quick stage min", "quick training min") else 0
            show[c] = [fmt(x, d) for x in show[c]]
    gpu_cols = [c for c in show.columns if c.startswith("GPU-hours")]
    main_cols = ["stage", "paper units", "quick CPU s/unit", "work ratio", "paper CPU s/unit", "paper CPU-hours",
                 "paper wall-hours (this machine)"] + gpu_cols
    print(show[main_cols].to_string(index=False))
    T_ = tot
    print(f"\nTOTAL: {int(T_['paper units']):,} training units at paper scale ({pp.key.nunique():,} unique), "
          f"{fmt(T_['paper CPU-hours'], 0)} CPU-hours of model training on this CPU "
          f"(= {fmt(T_['paper CPU-hours'] / 24, 0)} days of unit time; {fmt(T_['paper wall-hours (this machine)'] / 24, 0)} "
          "days of wall time with every stage on its workers as at quick).")
    print("Columns: quick CPU s/unit = mean recorded training seconds of the units the stage trained at quick; work ratio "
          "= mean paper work / mean quick work per unit;\npaper CPU s/unit, CPU-hours = extrapolated (a unit's recorded "
          "time is its training wall time: one thread per unit, execution.workers units at once in every stage);"
          "\nGPU-hours: nothing was measured on a GPU (see --gpu-results, --gpu-seconds-per-unit, --gpu-speedup).")
    print("\nHow firm each row is:")
    print("(same config = a quick unit of the same net, data shape, quantization, encoding, transfer setting and batch "
          "size was timed; FLOP-scaled = 06/07, whose paper nets are other, larger nets)")
    print(show[["stage", "quick units timed", "% hours same config", "% hours FLOP-scaled net", "% hours PROXY",
                "PROXY lower-bound CPU-hours",
                "units without a rate", "quick stage min", "quick training min"]].to_string(index=False))
    ct.insert(1, "scale", "paper")
    ct.to_csv(args.csv, index=False)

    print("\nBasis of the paper estimate (how each unit's rate was matched to the quick run):")
    b = est[~est.scaled_net].groupby("basis").est_seconds.agg(["size", "sum"])
    for lvl, r in b.iterrows():
        lab = LEVELS[lvl][0] if 0 <= lvl < PROXY else (PROXY_LABEL if lvl == PROXY else "no rate")
        print(f"  {lab[:100]:100s} {int(r['size']):>6,} units {r['sum'] / 3600:>7,.0f} CPU-h")
    sn = est[est.scaled_net]
    print(f"  {'06/07: quick net timed, scaled by FLOPs per image to the paper net':100s} {len(sn):>6,} units "
          f"{sn.est_seconds.sum() / 3600:>7,.0f} CPU-h")
    qr = {k[1:]: v for k, v in idx.items() if k[0] == "qratio"}
    if (est.basis == PROXY).any():
        px = est[est.basis == PROXY].groupby(["stage", "dataset", "quant"]).size()
        print("  PROXY: no quantized image net was trained at quick. Their rate = the same net's full-precision rate x "
              "the quantized/full-precision ratio measured on Iris/Breast Cancer (" +
              ", ".join(f"{k} {'weights' if qq == 'w' else 'activations'} x{v[0]:.2f}" for (k, qq), v in sorted(qr.items()))
              + "). Without that ratio they would total the 'PROXY lower-bound' above.\n  PROXY units: "
              + "; ".join(f"{SHORT[s]} {d} {'w' if qq == 'w' else 'a'}-quantized {n}" for (s, d, qq), n in px.items()))
    print("\nThe same image net in two quick setups (rate = seconds per unit of work; x = relative to the cheapest setup):")
    for line in setup_spread(m):
        print(line)
    print("  -> per-sample cost moves with members per epoch (the per-epoch learning-curve evaluation is inside the "
          "recorded time) and batch size;\n     paper units have more members per epoch, so the linear extrapolation "
          "leans high for them, and low where paper's batch is smaller.")
    print("\n06/07 nets (FLOPs per image, MFLOP; the quick -> paper ratio scales time):")
    for sid in ("06", "07"):
        for sc in ("quick", "paper"):
            ks = [k for k in flops if k[0] == sc and k[1] == sid]
            print(f"  {sid} {sc}: " + ", ".join(f"{k[2]} {flops[k]:,.0f}" for k in ks))
    print("  FLOPs are an assumption about time: wider nets usually run closer to peak on a CPU than the quick ones, "
          "so 06/07 may be overestimated.")
    if args.detail:
        print("\nPaper units per configuration (est_s = extrapolated CPU seconds per unit, median; basis = level above):")
        g = est.groupby(["stage", "dataset", "kind", "quant", "enc", "frozen", "batch", "basis"], sort=False).agg(
            units=("key", "size"), members=("members", "median"), epochs=("epochs", "median"), T=("T", "median"),
            est_s=("est_seconds", "median"), hours=("est_seconds", lambda s: s.sum() / 3600))
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(g.round(1).to_string())

    print("\nNot in the total (model training only is extrapolated):")
    eq, ep = enum["quick"], enum["paper"]
    pr = results.csv("06_post_training_quantization/ptq_runs.csv")
    print(f"  06 PTQ copies: quick {len(eq.ptq_jobs)} + {len(eq.ptq_adaptive)} adaptive"
          + (f" (committed ptq_runs.csv: {len(pr)} rows)" if pr is not None else "")
          + f"; paper {len(ep.ptq_jobs)} + {len(ep.ptq_adaptive)} adaptive; AdaRound/BRECQ iterations per layer/block "
          f"{eq.ptq_iters['adaround']} at quick, {ep.ptq_iters['adaround']} at paper")
    if pr is not None:
        print("     quick seconds per copy (recorded mean): "
              + ", ".join(f"{k} {v:.1f}" for k, v in pr.groupby("method").seconds.mean().items()))
    for st in STAGES:
        mm = m[m.trained_by == st]
        if st in minutes and len(mm):
            other = minutes[st] - mm.seconds.sum() / 60 / workers
            print(f"  {st}: quick stage {minutes[st]:.1f} min, ~{max(other, 0):.1f} min of it not model training")
    note("00_data and 99_claims train nothing; 00_data at paper writes 5 seeds of splits (minutes)")
    print("\nNotes:")
    for n in NOTES:
        print("  -", n)
    print("  - LINEAR extrapolation of per-unit times recorded by the committed quick run (this 2-core CPU); "
          "time per unit assumed proportional to\n    members x epochs x T (x FLOPs per image for 06/07). Data sizes: "
          + ", ".join(f"{k} {v[0]:,}" for k, v in sizes.items()) + " training examples.")
    out = Path(args.csv)
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
