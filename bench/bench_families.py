"""One line per model family: training samples/s, the share of the same run's matmul-equivalent rate, and the
stacked-vs-one-by-one ratio (issue 26's summary of `make bench`).

Families, at the shapes the quick run trains (random data; one training step = forward, cross-entropy, backward,
Adam):
- tabular ANN / SNN: Breast Cancer's FCNet (30 → 1000 → 2), batch 16, SNN T = 25, direct encoding; one torch thread,
  as the pipeline's two single-threaded workers train them;
- ConvNet SNN: paper A's MNIST ConvNet, T = 25, batch 32 (05's and 08's quick batch);
- ResNet-8: 06's CIFAR ResNet-8, width 16, batch 32;
- SEW-ResNet-10: 07's quick net (width 16, one block per stage, ImageNet stem, T = 8), batch 16.
Image families run on the machine's torch threads.

- **samples/s**: best of `--repeats` timings of `--steps` training steps after one warm-up step.
- **matmul share**: samples/s × (matmul/conv FLOPs of one training sample, forward and backward, counted by
  torch.utils.flop_counter) ÷ (a large float32 matmul's FLOP/s measured in the same run at the same thread count).
  100% would mean every second goes into dense matmul at peak; elementwise work, memory traffic and Python
  overhead are what keep it lower.
- **stacked ÷ one by one**: end-to-end training of K = 16 models as one stacked ensemble against one after the other:
  tabular FCNets with lib.core.stack_fc (bench/bench_tabular.py's runs, one epoch), ResNet-8 with lib.core.resnet's
  stack (bench/bench_ensemble.py's end_to_end, two steps). The ConvNet SNN and SEW have no stacked form ("—").

    .venv/bin/python bench/bench_families.py [--steps 5] [--repeats 2] [--no-stacked]

Other load on the machine lowers every number; the ratios and shares move less than the rates.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import bench_ensemble
import bench_tabular
from bench_snn import matmul_gflops
from lib.core import config
from lib.core import resnet as R
from lib.core import sew as S
from lib.core.models import Net, SNNConfig

ROOT = Path(__file__).resolve().parents[1]
K = 16


def families() -> list[tuple[str, int, torch.nn.Module, torch.Tensor, torch.Tensor]]:
    """(name, threads, model, inputs, labels) at the quick run's shapes."""
    g = torch.Generator().manual_seed(0)
    image_threads = torch.get_num_threads()
    out = []
    for kind in ("ann", "snn"):
        net = Net("fcnet", kind, (30,), 2, hidden=1000, snn=SNNConfig(steps=25) if kind == "snn" else None)
        out.append((f"tabular {kind.upper()}", 1, net, torch.rand(16, 30, generator=g), torch.randint(0, 2, (16,))))
    net = Net("convnet", "snn", (1, 28, 28), 10, hidden=1000, snn=SNNConfig(steps=25))
    out.append(("ConvNet SNN", image_threads, net, torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,))))
    out.append(("ResNet-8", image_threads, R._init({"blocks": (1, 1, 1), "widths": (16, 32, 64)}, 0),
                torch.rand(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,))))
    out.append(("SEW-ResNet-10", image_threads, S.build("sew", width=16, blocks=[1, 1, 1, 1], T=8, K=8, encode=True),
                torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,))))
    return out


def step_fn(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def rate(step, batch: int, steps: int, repeats: int) -> float:
    step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return batch / best


def flops_per_sample(step, batch: int) -> float:
    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops() / batch


def stacked_ratio(name: str, params: dict) -> str:
    if name.startswith("tabular"):
        kind = name.split()[1].lower()
        data, splits = bench_tabular.dataset()
        one = bench_tabular.one_by_one(params, kind, K, 1, None, data, splits)
        stack = bench_tabular.stacked(params, kind, K, 1, None, data, splits)
        return f"{stack / one:.2f}x"
    if name == "ResNet-8":
        one, stack = bench_ensemble.end_to_end({"blocks": (1, 1, 1), "widths": (16, 32, 64)}, K, 32, 2, 1)
        return f"{stack / one:.2f}x"
    return "—"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-stacked", action="store_true", help="skip the stacked-vs-one-by-one runs")
    a = ap.parse_args(argv)
    params = config.load(ROOT / "params.yaml", "quick")
    default_threads = torch.get_num_threads()
    peak = {}
    rows = []
    for name, threads, model, x, y in families():
        torch.set_num_threads(threads)
        if threads not in peak:
            peak[threads] = matmul_gflops() * 1e9
        step = step_fn(model, x, y)
        sps = rate(step, len(x), a.steps, a.repeats)
        fps = flops_per_sample(step, len(x))
        ratio = "skipped" if a.no_stacked else stacked_ratio(name, params)
        rows.append((name, threads, sps, fps, 100 * sps * fps / peak[threads], ratio))
        torch.set_num_threads(default_threads)
        print(f"  measured {name}", flush=True)
    print("\nmatmul: " + ", ".join(f"{v / 1e9:.0f} GFLOP/s at {t} thread(s)" for t, v in peak.items()))
    print(f"{'family':<15s} {'threads':>7s} {'samples/s':>10s} {'MFLOP/sample':>13s} {'matmul share':>13s} "
          f"{'stacked K=16 / one by one':>26s}")
    for name, threads, sps, fps, share, ratio in rows:
        print(f"{name:<15s} {threads:>7d} {sps:10.1f} {fps / 1e6:13.1f} {share:12.0f}% {ratio:>26s}")


if __name__ == "__main__":
    main()
