"""The CUDA paths, checked on a machine with a GPU in a few minutes (make gpu-check). Each part prints PASS, FAIL or
SKIP with its reason; without CUDA every CUDA part SKIPs ("no CUDA") and the script exits 0. Exit 1 = a part FAILed.

    python bench/gpu_check.py [--skip-smoke] [--out results/gpu_check.json] [--smoke-root runs/gpu-check]
                              [--steps 20]

(a) smoke   the smoke pipeline on CUDA: `python -m lib.core.smoke runs/gpu-check` (dvc repro at smoke scale in its own
            output root, a copy of this tree; train.device auto picks CUDA). ~15 min; --skip-smoke skips it.
(b) stack   stacked ResNet ensembles on CUDA equal one-by-one training: tests/test_resnet.py's CPU check
            (test_stacked_training_equals_one_by_one_and_seeds_matter: its tiny ResNet, data and recipe) with 16 models
            in one stack (the CUDA default, lib.core.resnet.default_stack) against 16 trained alone, TF32 off. Tolerance
            1e-3 (abs and rel) on every weight and BN statistic after 2 epochs (4-6 SGD steps): float reassociation in grouped vs
            plain convolutions and cuDNN's algorithm choice move weights by ~1e-6; a wrong batch, gradient or lr
            moves them by >= 1e-2 (the CPU test's measurements).
(c) ray     the Ray GPU task path (lib.core.executor.run_jobs with execution.ray_gpus_per_unit = 1): one task started on
            a local Ray, PASS if it sees a CUDA device.
(d) timing  one paper-scale unit of 06 (a stack of 16 ResNets of the paper's `arch`, batch, as 06 trains them on CUDA)
            and of 07 (its first SEW-ResNet at the paper's T, K, batch, via lib.core.sew.fit) trained for --steps
            optimizer steps on random images after a warm-up; seconds per step x the paper unit's steps per epoch x
            epochs = the unit's extrapolated seconds (a measurement of the step, an extrapolation to the unit).
            Written to --out (results/gpu_check.json) with the unit of work bench/plan.py uses
            (members x epochs x MFLOPs per image): `make plan` then prints GPU-hours for 06 and 07.
Nothing is written when nothing was measured (no CUDA): bench/plan.py keeps "not measured".
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "results" / "gpu_check.json"
PARTS = ("smoke", "stack", "ray", "timing")
TOL = 1e-3


class Part:
    """One part's verdict: status PASS / FAIL / SKIP, why, and what it measured."""

    def __init__(self, name: str):
        self.name, self.status, self.reason, self.data = name, None, "", {}

    def set(self, status: str, reason: str, **data) -> "Part":
        self.status, self.reason = status, reason
        self.data.update(data)
        print(f"[{status}] {self.name}: {reason}", flush=True)
        return self

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, **self.data}


def cuda() -> bool:
    import torch
    return bool(torch.cuda.is_available())


# ----------------------------------------------------------------------------- (a) smoke

def part_smoke(root: str, skip: bool) -> Part:
    p = Part("smoke")
    if not cuda():
        return p.set("SKIP", "no CUDA")
    if skip:
        return p.set("SKIP", "--skip-smoke")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "lib.core.smoke", root], cwd=ROOT)
    minutes = (time.perf_counter() - t0) / 60
    if r.returncode != 0:
        return p.set("FAIL", f"python -m lib.core.smoke {root} exited {r.returncode} after {minutes:.1f} min",
                     minutes=minutes)
    return p.set("PASS", f"smoke pipeline (dvc repro at smoke scale) ran on CUDA in {minutes:.1f} min, outputs under "
                         f"{root}", minutes=minutes)


# ----------------------------------------------------------------------------- (b) stacked = one by one

def stack_equal(k: int = 16, device: str = "cuda") -> tuple[bool, str, dict]:
    """(ok, message, measurements): `k` tiny ResNets trained in one stack on `device` against each trained alone."""
    import numpy as np
    import torch
    from lib.core import resnet as R
    torch.backends.cudnn.allow_tf32 = False      # TF32 would round convolutions to 10-bit mantissas
    torch.backends.cuda.matmul.allow_tf32 = False
    tiny = dict(blocks=(1, 1, 1), widths=(4, 8, 8), n_classes=10)   # tests/test_resnet.py's TINY
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g)
    rng = np.random.default_rng(0)
    members = [np.sort(rng.choice(64, int(rng.integers(30, 35)), replace=False)) for _ in range(k)]
    seeds = list(range(1, k + 1))
    kw = dict(epochs=2, batch_size=16, lr=0.05, device=device)
    alone = R.train(tiny, x, y, members, seeds, stack=1, **kw)
    stacked = R.train(tiny, x, y, members, seeds, stack=k, **kw)
    worst, where = 0.0, ""
    for m, (a, b) in enumerate(zip(alone, stacked)):
        for n, t in a["state_dict"].items():
            u = b["state_dict"][n]
            if not t.dtype.is_floating_point:
                if not torch.equal(t, u):
                    return False, f"model {m} {n}: {t.tolist()} alone, {u.tolist()} stacked", {}
                continue
            d = float((u - t).abs().max())
            if d > worst:
                worst, where = d, f"model {m} {n}"
            if not torch.allclose(u, t, rtol=TOL, atol=TOL):
                return False, (f"{k} models stacked on {device} differ from one-by-one beyond {TOL}: model {m} {n} "
                               f"max |diff| {d:.2e}"), {"max_abs_diff": d}
    w = [r["state_dict"]["fc.weight"] for r in alone]
    if torch.allclose(w[0], w[1], atol=1e-2):
        return False, "two seeds gave the same weights (the check could not fail)", {}
    return True, (f"{k} tiny ResNets in one {device} stack = one by one within {TOL} after 2 epochs "
                  f"(max |diff| {worst:.1e}, {where})"), {"models": k, "max_abs_diff": worst, "tolerance": TOL}


def part_stack(k: int = 16) -> Part:
    p = Part("stack")
    if not cuda():
        return p.set("SKIP", "no CUDA")
    ok, msg, data = stack_equal(k, "cuda")
    return p.set("PASS" if ok else "FAIL", msg, **data)


# ----------------------------------------------------------------------------- (c) Ray GPU task

def _report_device(path: str) -> None:
    """A Ray task's body: write what torch sees to `path`."""
    import torch
    ok = torch.cuda.is_available()
    Path(path).write_text(json.dumps({"cuda": ok, "device": torch.cuda.get_device_name(0) if ok else None,
                                      "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}))


def part_ray() -> Part:
    p = Part("ray")
    if not cuda():
        return p.set("SKIP", "no CUDA")
    try:
        import ray
    except ImportError:
        return p.set("FAIL", "ray cannot be imported (pip install -r requirements.txt -c requirements-lock.txt)")
    from lib.core import executor as EX
    settings = EX.Settings(executor="ray", ray_gpus_per_unit=1, ray_cpus_per_unit=1, ray_max_retries=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "task.json"
        try:
            EX.run_jobs([EX.Job(_report_device, (str(out),), "gpu-check task")], settings, desc="gpu-check")
            seen = json.loads(out.read_text())
        except Exception as e:   # noqa: BLE001 - reported as the part's failure
            return p.set("FAIL", f"the Ray task failed: {type(e).__name__}: {e}")
        finally:
            ray.shutdown()
    if not seen["cuda"]:
        return p.set("FAIL", f"a task with ray_gpus_per_unit=1 saw no CUDA device ({seen})", **seen)
    return p.set("PASS", f"a Ray task with ray_gpus_per_unit=1 saw {seen['device']} "
                         f"(CUDA_VISIBLE_DEVICES={seen['CUDA_VISIBLE_DEVICES']})", **seen)


# ----------------------------------------------------------------------------- (d) one paper-scale unit, timed

def _time_06(params: dict, steps: int, mflops: float, device: str = "cuda") -> dict:
    import numpy as np
    import torch
    from lib.core import resnet as R
    from lib.stages import ptq_privacy as PP
    P = PP.Params.from_params(params)
    tr, k = P.training, P.stack or R.default_stack(torch.device(device))
    arch = {**asdict(P.arch), "n_classes": 10}
    n = steps * tr.batch_size
    x, y = torch.rand(2 * n, 3, 32, 32) * 2 - 1, torch.randint(0, 10, (2 * n,))
    rng = np.random.default_rng(0)
    mem = lambda size: [np.sort(rng.choice(2 * n, size, replace=False)) for _ in range(k)]   # noqa: E731
    kw = dict(epochs=1, batch_size=tr.batch_size, lr=tr.lr, momentum=tr.momentum, weight_decay=tr.weight_decay,
              augment=tr.augment, stack=k, device=device)
    R.train(arch, x, y, mem(2 * tr.batch_size), list(range(k)), **kw)   # warm-up: cuDNN autotuning, allocations
    if device == "cuda":
        torch.cuda.synchronize()
    recs = R.train(arch, x, y, mem(n), list(range(k)), **kw)
    per_step = recs[0]["seconds"] / steps             # one model's share of its stack's wall time, per step
    members = int(round(P.pkeep * (P.pool or 50000)))
    unit_steps = math.ceil(members / tr.batch_size) * tr.epochs
    sec = per_step * unit_steps
    return {"net": f"ResNet {P.arch.blocks} x {P.arch.widths}", "stack": k, "batch_size": tr.batch_size,
            "steps_timed": steps, "seconds_per_step_per_model": per_step, "members": members, "epochs": tr.epochs,
            "seconds_per_unit": sec, "mflops_per_image": mflops, "seconds_per_work": sec / (members * tr.epochs * mflops)}


def _time_07(params: dict, steps: int, mflops: dict, device: str = "cuda") -> dict:
    import torch
    from lib.core import sew as S
    from lib.stages import grad_obf as G
    sec = G.Params.from_params(params)
    spec = next((s for s in sec.models if s.kind == "sew"), sec.models[0])
    tr = sec.training
    n = steps * tr.batch_size
    x, y = torch.rand(n, 3, 32, 32), torch.randint(0, 10, (n,))
    fit = dict(batch_size=tr.batch_size, lr=tr.lr, weight_decay=tr.weight_decay, flip=tr.flip, device=device)
    S.fit(G.build(sec, spec, 10, 0), x[:2 * tr.batch_size], y[:2 * tr.batch_size], epochs=1, **fit)   # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    rec = S.fit(G.build(sec, spec, 10, 0), x, y, epochs=1, **fit)
    per_step = rec["seconds"] / steps
    members = int(sec.n_train or 50000)
    s = per_step * math.ceil(members / tr.batch_size) * tr.epochs
    mf = mflops[spec.name]
    return {"net": spec.name, "T": sec.T, "batch_size": tr.batch_size, "steps_timed": steps,
            "seconds_per_step": per_step, "members": members, "epochs": tr.epochs, "seconds_per_unit": s,
            "mflops_per_image": mf, "seconds_per_work": s / (members * tr.epochs * mf)}


def time_units(params: dict, steps: int, device: str = "cuda") -> tuple[dict, list[str]]:
    """One unit of 06 and of 07 at params' scale, timed on `device` ({stage: measurements}, errors). The tests run it
    at quick scale on the CPU for a few steps; make gpu-check at paper scale on CUDA."""
    import paper_scale_cost as PSC
    flops = PSC.net_flops(params["scale"])
    f06 = flops[(params["scale"], "06", "resnet")]
    f07 = {k[2]: v for k, v in flops.items() if k[1] == "07"}
    units, errors = {}, []
    for stage, fn in (("06_post_training_quantization", lambda: _time_06(params, steps, f06, device)),
                      ("07_gradient_sparsity", lambda: _time_07(params, steps, f07, device))):
        try:
            units[stage] = {**fn(), "scale": params["scale"], "device": device}
        except Exception as e:   # noqa: BLE001 - one stage's failure is reported, the other still timed
            errors.append(f"{stage}: {type(e).__name__}: {e}")
    return units, errors


def part_timing(steps: int) -> tuple[Part, dict]:
    p = Part("timing")
    if not cuda():
        return p.set("SKIP", "no CUDA"), {}
    from lib.core import config as C
    units, errors = time_units(C.load(ROOT / "params.yaml", "paper"), steps, "cuda")
    if errors:
        return p.set("FAIL", "; ".join(errors), units=units), units
    return p.set("PASS", "; ".join(f"{st[:2]} {u['net']}: {u['seconds_per_unit'] / 3600:.2f} GPU-hours per paper unit "
                                   f"(extrapolated from {u['steps_timed']} timed steps)" for st, u in units.items()),
                 units=units), units


# ----------------------------------------------------------------------------- output

def write_json(path: str | Path, parts: list[Part], units: dict) -> Path:
    """The measurements bench/plan.py reads: device, when, every part's verdict, and per stage the timed unit."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
           "torch": torch.__version__, "cuda": torch.version.cuda,
           "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "parts": {p.name: p.as_dict() for p in parts}, "units": units,
           "work": "members x epochs x MFLOPs per image (bench/plan.py); seconds_per_work = seconds_per_unit / work"}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1, default=str) + "\n")
    os.replace(tmp, path)
    return path


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-smoke", action="store_true", help="skip part (a), the ~15-minute smoke pipeline")
    ap.add_argument("--out", default=str(OUT), help="where the measurements go (written only if something was timed)")
    ap.add_argument("--smoke-root", default="runs/gpu-check", help="output root of part (a)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps timed per paper-scale unit (d)")
    a = ap.parse_args(argv)
    if a.steps < 2:
        ap.error("--steps must be at least 2")
    return a


def main(argv=None) -> int:
    args = parse(argv)
    import torch
    print(f"gpu-check: torch {torch.__version__}, CUDA "
          + (f"{torch.version.cuda} on {torch.cuda.get_device_name(0)}" if cuda() else "not available (every CUDA "
             "part SKIPs)"), flush=True)
    parts = [part_smoke(args.smoke_root, args.skip_smoke), part_stack(), part_ray()]
    timing, units = part_timing(args.steps)
    parts.append(timing)
    if units:
        print(f"wrote {write_json(args.out, parts, units)}")
    else:
        print(f"nothing measured: {args.out} not written (bench/plan.py keeps GPU-hours 'not measured')")
    print("summary: " + ", ".join(f"{p.name} {p.status}" for p in parts))
    return 1 if any(p.status == "FAIL" for p in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
