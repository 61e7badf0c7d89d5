"""Training throughput of K small CIFAR ResNets: one by one against one stacked ensemble (lib.core.resnet).

Prints, on random 3×32×32 data with batch 128 per model:
(1) layouts for one SGD step (forward + backward + update) of K models: plain models one by one and the
    stacked grouped-conv module, each in NCHW and channels_last, and torch.func vmap over the stacked
    parameters (NCHW); images/s per model, best of `--repeats`;
(2) end to end, lib.core.resnet.train (init + batch draw + augmentation + steps, one epoch of `--steps`
    steps, after a one-step warm-up at each shape) with stack = 1 against stack = K, and the speed-up.

    .venv/bin/python bench/bench_ensemble.py [--k 16] [--steps 2] [--repeats 1] [--arch resnet8 resnet20] [--no-layouts]

Other processes on the machine bias these numbers: candidates are interleaved and the best run is kept.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from lib.core import resnet as R

ARCHS = {"resnet8": dict(blocks=(1, 1, 1), widths=(16, 32, 64)), "resnet20": dict(blocks=(3, 3, 3), widths=(16, 32, 64))}
CL = torch.channels_last


def _step_fns(arch: dict, k: int, batch: int, sample: int) -> dict:
    """name → (one SGD step over the models it covers, how many models that is)."""
    models = [R._init(arch, s) for s in range(k)]
    x, y = torch.randn(k, batch, 3, 32, 32), torch.randint(0, 10, (k, batch))

    def plain(cl: bool):
        ms = [copy.deepcopy(m).to(memory_format=CL if cl else torch.contiguous_format) for m in models[:sample]]
        opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in ms]

        def step():
            for i, (m, o) in enumerate(zip(ms, opts)):
                o.zero_grad(set_to_none=True)
                F.cross_entropy(m(x[i]), y[i]).backward()
                o.step()
        return step, sample

    def stacked(cl: bool):
        st = R.stack(models).to(memory_format=CL if cl else torch.contiguous_format)
        opt = torch.optim.SGD(st.parameters(), lr=0.1, momentum=0.9)

        def step():
            out = st(x)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(k, batch).mean(1).sum().backward()
            opt.step()
        return step, k

    def vmapped():
        params, buffers = stack_module_state(models)
        params = {n: p.detach().requires_grad_() for n, p in params.items()}
        base = copy.deepcopy(models[0]).to("meta")
        opt = torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9)

        def loss(p, b, xb, yb):
            return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

        def step():
            opt.zero_grad(set_to_none=True)
            vmap(loss)(params, buffers, x, y).sum().backward()
            opt.step()
        return step, k

    return {"one by one, NCHW": plain(False), "one by one, channels_last": plain(True),
            "stacked grouped conv, NCHW": stacked(False), "stacked grouped conv, channels_last": stacked(True),
            "vmap(functional_call), NCHW": vmapped()}


def layouts(arch: dict, k: int, batch: int, repeats: int) -> None:
    fns = _step_fns(arch, k, batch, sample=min(k, 4))
    best = dict.fromkeys(fns, float("inf"))
    for step, _ in fns.values():
        step()  # warm-up (oneDNN primitive creation)
    for _ in range(repeats):  # interleaved, so that load from other processes hits every candidate alike
        for name, (step, n) in fns.items():
            t0 = time.perf_counter()
            step()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    for name, t in best.items():
        print(f"  {name:38s} {batch / t:7.0f} img/s per model")


def end_to_end(arch: dict, k: int, batch: int, steps: int, repeats: int) -> tuple[float, float]:
    """Images/s per model of train() with stack = 1 and stack = k (best of `repeats`, interleaved)."""
    x, y = torch.randn(steps * batch, 3, 32, 32), torch.randint(0, 10, (steps * batch,))
    members = [np.arange(steps * batch)] * k
    for stack in (1, k):  # warm-up: one step at each shape
        R.train(arch, x[:batch], y[:batch], [np.arange(batch)] * stack, list(range(stack)), epochs=1,
                batch_size=batch, stack=stack, desc="warm-up")
    best = {1: float("inf"), k: float("inf")}
    for _ in range(repeats):
        for stack in best:
            t0 = time.perf_counter()
            R.train(arch, x, y, members, list(range(k)), epochs=1, batch_size=batch, stack=stack, desc=f"stack={stack}")
            best[stack] = min(best[stack], (time.perf_counter() - t0) / k)
    return steps * batch / best[1], steps * batch / best[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2, help="SGD steps per model in the end-to-end runs")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per candidate, interleaved (best is kept)")
    ap.add_argument("--arch", nargs="+", default=["resnet8"], choices=sorted(ARCHS))
    ap.add_argument("--no-layouts", action="store_true")
    args = ap.parse_args()
    dev = R._device(None)
    print(f"device {dev}, {torch.get_num_threads()} threads, K = {args.k}, batch {args.batch} per model; "
          f"in train(): {'channels_last' if R.memory_format(dev) == CL else 'NCHW'}")
    for name in args.arch:
        arch = ARCHS[name]
        print(f"{name} {arch}")
        if not args.no_layouts and dev.type == "cpu":
            print(f"  one SGD step (one by one: {min(args.k, 4)} of the models, timed per model):")
            layouts(arch, args.k, args.batch, args.repeats)
        one, stacked = end_to_end(arch, args.k, args.batch, args.steps, args.repeats)
        print(f"  train(): one by one {one:7.0f} img/s per model | stacked K={args.k} {stacked:7.0f} img/s per model"
              f" | speed-up {stacked / one:.2f}×")


if __name__ == "__main__":
    main()
