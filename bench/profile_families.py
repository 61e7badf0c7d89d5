"""Where one training step's time goes, per model family (issue 26: profile before optimizing).

For each family, a few training steps (forward + cross-entropy + backward + Adam) on random data of the quick
run's shapes, under torch.profiler (CPU); prints the share of self CPU time of the top operators, grouped into
what they are: conv / matmul (the useful FLOPs), elementwise (the LIF chain, activations, surrogate), pooling and
batch norm, the optimizer, data movement (copy / cat / layout), and the rest (mostly per-op Python and
dispatcher overhead: profiler "self" time that no kernel claims is not counted, so the shares are of kernel time).

    .venv/bin/python bench/profile_families.py [--steps 3] [--threads 1] [--top 8]

Families: tabular ANN and SNN (Breast Cancer: 30 → 1000 → 2, batch 16, T = 25), ConvNet SNN (MNIST shape, batch 128,
T = 25), CIFAR ResNet-8 (width 16, batch 128), SEW-ResNet-18 (narrow, width 16, T = 8, batch 16). The numbers move
with other load on the machine; the shares move much less than the times.
"""
from __future__ import annotations

import argparse
import re
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from lib.core import resnet as R
from lib.core import sew as S
from lib.core.models import Net, SNNConfig

GROUPS = [  # (name, regex on the aten op name); first match wins
    ("conv / matmul", r"conv|mm|addmm|bmm|linear|matmul|mkldnn_convolution"),
    ("pool / batch norm", r"pool|batch_norm|native_batch_norm"),
    ("optimizer (Adam)", r"_foreach|adam|lerp|addcdiv|addcmul|sqrt"),
    ("data movement", r"copy|cat|stack|contiguous|clone|to_copy|index|select|slice|transpose|permute|view|expand|"
                      r"empty|fill|zero"),
    ("elementwise (LIF, activations, loss)", r"add|sub|mul|div|gt|ge|lt|threshold|relu|sigmoid|atan|where|sum|"
                                            r"mean|softmax|nll|cross|neg|pow|abs|exp|log|clamp|heaviside|sign"),
]


def families():
    """name -> (model, inputs, labels, batch size)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for kind in ("ann", "snn"):
        net = Net("fcnet", kind, (30,), 2, hidden=1000, snn=SNNConfig(steps=25) if kind == "snn" else None)
        out[f"tabular {kind.upper()}"] = (net, torch.rand(16, 30, generator=g), torch.randint(0, 2, (16,)), 16)
    net = Net("convnet", "snn", (1, 28, 28), 10, hidden=1000, snn=SNNConfig(steps=25))
    out["ConvNet SNN"] = (net, torch.rand(128, 1, 28, 28, generator=g), torch.randint(0, 10, (128,)), 128)
    out["ResNet-8"] = (R._init({"blocks": (1, 1, 1), "widths": (16, 32, 64)}, 0),
                       torch.rand(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,)), 128)
    out["SEW-ResNet-18"] = (S.build("sew", width=16, T=8, K=8, encode=True, stem="cifar"),
                            torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,)), 16)
    return out


def step_fn(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def group_of(name: str) -> str:
    n = name.lower().removeprefix("aten::")
    for g, rx in GROUPS:
        if re.search(rx, n):
            return g
    return "other"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"threads: {a.threads}; {a.steps} profiled training steps per family after one warm-up step")
    for name, (model, x, y, bs) in families().items():
        step = step_fn(model, x, y)
        step()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(a.steps):
                step()
        wall = (time.perf_counter() - t0) / a.steps
        ev = [e for e in prof.key_averages() if e.key.startswith("aten::")]
        tot = sum(e.self_cpu_time_total for e in ev) or 1.0
        groups = {}
        for e in ev:
            groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + e.self_cpu_time_total
        kernel = tot / a.steps / 1e6
        print(f"\n== {name}: {bs / wall:.0f} samples/s (profiled; {1e3 * wall:.1f} ms a step, aten kernels "
              f"{1e3 * kernel:.1f} ms = {100 * kernel / wall:.0f}%, the rest Python / dispatch / autograd)")
        print("   " + "; ".join(f"{g} {100 * v / tot:.0f}%" for g, v in sorted(groups.items(), key=lambda kv: -kv[1])))
        for e in sorted(ev, key=lambda e: -e.self_cpu_time_total)[:a.top]:
            print(f"     {e.key:<40s} {100 * e.self_cpu_time_total / tot:5.1f}%  ({e.count // a.steps} calls a step)")


if __name__ == "__main__":
    main()
