"""Training throughput of the tabular FCNets: one by one (lib.core.train.fit) against one stacked ensemble
(lib.core.stack_fc.fit_units), end to end (batch draw, encoder noise, forward, backward, Adam, per-epoch eval).

Breast-Cancer-shaped synthetic data (30 features → 1000 → 2 classes, 228 members, 114 eval examples: the real
pools' sizes), the recipe of params.yaml at `--scale` (batch 16, Adam, lr per kind, T = the scale's `steps` and
model.snn's encoding/readout), `--epochs` epochs. Prints, for ANN and SNN and K = 1, 4, 16: samples/s (member
examples × epochs × K per second) one by one and stacked, and the ratio; also stacked with torch's fused Adam
(fit_stacked(fused_adam=True): faster, not bit-equal to fit's Adam). One torch thread by default, as the
pipeline's local workers train (two single-threaded workers on two cores). Other processes on the machine bias
these numbers: one-by-one and stacked runs are interleaved `--repeats` times and the best of each is kept.
`--profile` adds a torch.profiler table of one stacked SNN run at the largest K (where the time goes).

    .venv/bin/python bench/bench_tabular.py [--k 1 4 16] [--epochs 2] [--repeats 2] [--threads 1] [--scale quick]
                                            [--encoding direct] [--profile]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lib.core import config, data as D
from lib.core import stack_fc as S
from lib.core.train import build, fit

ROOT = Path(__file__).resolve().parents[1]
N_MEMBERS, N_EVAL, N_FEATURES = 228, 114, 30


def dataset() -> tuple[D.Tensors, list[dict]]:
    """Synthetic Breast-Cancer-shaped data in [0, 1] and 16 splits (members, eval pool)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(455 + N_EVAL, N_FEATURES, generator=g)
    y = (x[:, :3].sum(1) > 1.5).long()
    data = D.Tensors("breast_cancer", x[:455], y[:455], x[455:], y[455:], 2, "tabular", "synthetic", (0.0, 1.0))
    splits = []
    for s in range(16):
        perm = torch.randperm(455, generator=torch.Generator().manual_seed(s)).tolist()
        pools = {"target_in": perm[:N_MEMBERS], "target_out": perm[N_MEMBERS:], "eval": list(range(N_EVAL))}
        splits.append({"pools": pools, "source": {"target_in": "train", "target_out": "train", "eval": "test"}})
    return data, splits


def models(params, kind, k, epochs, encoding, data):
    over = {"epochs": epochs, **({"encoding": encoding} if kind == "snn" and encoding else {})}
    units = [config.unit(params, "breast_cancer", kind, "target", s, **over) for s in range(k)]
    nets = []
    for u in units:
        torch.manual_seed(u["seed"])
        nets.append(build(u, data))
    return units, nets


def one_by_one(params, kind, k, epochs, encoding, data, splits) -> float:
    units, nets = models(params, kind, k, epochs, encoding, data)
    t0 = time.perf_counter()
    for net, u, s in zip(nets, units, splits):
        fit(net, u, data, s, dev=torch.device("cpu"), progress=False)
    return k * N_MEMBERS * epochs / (time.perf_counter() - t0)


def stacked(params, kind, k, epochs, encoding, data, splits, fused_adam=False) -> float:
    units, nets = models(params, kind, k, epochs, encoding, data)
    t0 = time.perf_counter()
    S.fit_units(nets, units, data, splits[:k], fused_adam=fused_adam)
    return k * N_MEMBERS * epochs / (time.perf_counter() - t0)


def profile(params, k, epochs, encoding, data, splits) -> None:
    from torch.profiler import ProfilerActivity, profile as prof
    units, nets = models(params, "snn", k, epochs, encoding, data)
    with prof(activities=[ProfilerActivity.CPU]) as p:
        S.fit_units(nets, units, data, splits[:k])
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scale", default=None, help="params.yaml scale (default: the file's `scale`)")
    ap.add_argument("--encoding", default=None, help="SNN encoding (default: params.yaml model.snn.encoding)")
    ap.add_argument("--kinds", nargs="+", default=["ann", "snn"])
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    params = config.load(ROOT / "params.yaml", a.scale)
    data, splits = dataset()
    steps = config.effective(params, None, "breast_cancer")["steps"]
    print(f"scale {params['scale']}: T = {steps}, encoding {a.encoding or params['model']['snn']['encoding']}, "
          f"batch {params['train']['batch_size']['tabular']}, {N_MEMBERS} members, {a.epochs} epochs, "
          f"{a.threads} thread(s); samples/s (members × epochs × K / s), best of {a.repeats}")
    print(f"{'kind':4s} {'K':>3s} {'one-by-one':>11s} {'stacked':>9s} {'ratio':>6s} {'+fused Adam':>12s} {'ratio':>6s}")
    for kind in a.kinds:
        for k in a.k:
            best = {"one": 0.0, "stack": 0.0, "fused": 0.0}
            for _ in range(a.repeats):   # interleaved: a busy spell hits both
                best["one"] = max(best["one"], one_by_one(params, kind, k, a.epochs, a.encoding, data, splits))
                best["stack"] = max(best["stack"], stacked(params, kind, k, a.epochs, a.encoding, data, splits))
                best["fused"] = max(best["fused"], stacked(params, kind, k, a.epochs, a.encoding, data, splits, True))
            print(f"{kind:4s} {k:3d} {best['one']:11.0f} {best['stack']:9.0f} {best['stack'] / best['one']:5.1f}x "
                  f"{best['fused']:12.0f} {best['fused'] / best['one']:5.1f}x", flush=True)
    if a.profile:
        profile(params, max(a.k), a.epochs, a.encoding, data, splits)


if __name__ == "__main__":
    main()
