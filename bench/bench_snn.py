"""Training throughput of our multi-step SNN ConvNet against the snntorch per-step loop.

Prints, in one run on this machine: samples/s of one training step (forward + backward + Adam) of
paper A's SNN ConvNet (MNIST shape, T = 25, batch 128) for (a) lib.core.models.Net and (b) the same network
written as the usual snntorch loop (snn.Leaky called once per step, every layer re-run every step),
with the same weights; (c) float32 matmul GFLOP/s; and the ratios, including our throughput as a share
of the "matmul-equivalent" rate = GFLOP/s ÷ nominal training FLOPs per sample (3 × forward FLOPs of
all conv/linear layers over T steps).

    .venv/bin/python bench/bench_snn.py [--steps 25] [--batch 128] [--iters 3]
"""
from __future__ import annotations

import argparse
import time

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from lib.core.models import Net, SNNConfig, snntorch_step_loop


class SnntorchLoop(nn.Module):
    """The reference: lib.core.models.snntorch_step_loop (snn.Leaky once per layer per step), same weights."""

    def __init__(self, net: Net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return snntorch_step_loop(self.net, x)[-1]


def forward_flops(shape=(1, 28, 28), channels=(32, 64), hidden=1000, classes=10, k=3) -> float:
    c, h, w = shape
    conv1 = h * w * channels[0] * c * k * k * 2
    conv2 = (h // 2) * (w // 2) * channels[1] * channels[0] * k * k * 2
    fc1 = channels[1] * (h // 4) * (w // 4) * hidden * 2
    fc2 = hidden * classes * 2
    return float(conv1 + conv2 + fc1 + fc2)


def throughput(model, x, y, iters: int, weight_decay: float = 0.0) -> float:
    """Training samples/s of `model` on one batch (x, y): Adam steps (lr 1e-3) after one warm-up step; CUDA is
    synchronised around the timed steps. Also used by bench_sew.py."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    if x.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return iters * len(x) / (time.perf_counter() - t0)


def matmul_gflops(n: int = 2048, iters: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    return 2 * n ** 3 * iters / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    x, y = torch.rand(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    ours = Net("convnet", "snn", (1, 28, 28), 10, snn=SNNConfig(steps=args.steps))
    ref = SnntorchLoop(ours)
    with torch.no_grad():  # same weights; float32 rounding may flip a rare spike, so report, don't assert
        diff = (ours(x) - ref(x)).abs().max().item()
    gflops = matmul_gflops()
    ours_sps = throughput(ours, x, y, args.iters)
    ref_sps = throughput(ref, x, y, args.iters)
    train_flops = 3 * forward_flops() * args.steps
    matmul_equiv = gflops * 1e9 / train_flops
    print(f"device: cpu, threads: {torch.get_num_threads()}, T = {args.steps}, batch = {args.batch}")
    print(f"max |ours - snntorch| output: {diff:.2e} (tests/test_models.py checks equality in float64)")
    print(f"float32 matmul:                {gflops:8.1f} GFLOP/s")
    print(f"nominal training FLOPs/sample: {train_flops / 1e9:8.3f} GFLOP  -> matmul-equivalent {matmul_equiv:.1f} samples/s")
    print(f"snntorch per-step loop:        {ref_sps:8.1f} samples/s")
    print(f"lib.core.models.Net (multi-step):   {ours_sps:8.1f} samples/s")
    print(f"ours / snntorch loop:          {ours_sps / ref_sps:8.2f} x   (target >= 1.3)")
    print(f"ours / matmul-equivalent:      {ours_sps / matmul_equiv:8.1%}    (target >= 85%)")


if __name__ == "__main__":
    main()
