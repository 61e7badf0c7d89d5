"""Training throughput of paper D's nets (lib.core.sew) on this machine, and the cost of one PGD-7 attack.

One training step = what ``lib.core.sew.fit`` does per batch: images [B, 3, 32, 32] in [0, 1] → (SNNs) phase
coding K = 8 over T steps → net → mean logits → cross-entropy → backward → Adam(lr 1e-3, wd 1e-3).
Prints images/s at batch 16 (the authors') and 64 for narrow / wider SEW-ResNet-18 (T = 8, 10; ImageNet and
CIFAR stems), Spiking-ResNet and the ANN twin (narrow), the full-width SEW-ResNet-18 at T = 10 (2 steps only),
and the seconds of one PGD-7 (ε 6/255, step 0.01, random start, BN in train mode, on the encoded spikes as the
authors) on a batch of 64 for the narrow SEW. Each row: 1 warm-up step, then `--steps` timed steps.

    .venv/bin/python bench/bench_sew.py [--steps 6] [--full-steps 2] [--pgd-batch 64] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from bench_snn import throughput   # same folder: `python bench/bench_sew.py` puts bench/ on sys.path
from lib.attacks.adversarial import pgd
from lib.core import sew as S


def train_rate(kind: str, *, width: int, blocks, T: int | None, stem: str, batch: int, steps: int,
               dev: torch.device, pool: str = "max") -> float:
    torch.manual_seed(0)
    if kind == "ann":
        model = S.build("ann", width=width, blocks=blocks, stem=stem, pool=pool)
    else:
        model = S.build(kind, width=width, blocks=blocks, stem=stem, pool=pool, T=T, K=8, encode=True)
    model.to(dev).train()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 32, 32, generator=g).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    return throughput(model, x, y, steps, weight_decay=1e-3)   # the authors' Adam (lr 1e-3, wd 1e-3)


def pgd_seconds(*, width: int, blocks, T: int, stem: str, batch: int, dev: torch.device) -> float:
    """One PGD-7 on the encoded spikes [T, B, 3, 32, 32] of `batch` images (the authors' attack space)."""
    torch.manual_seed(0)
    net = S.build("sew", width=width, blocks=blocks, stem=stem, T=T).to(dev)   # SpikingClassifier
    g = torch.Generator().manual_seed(2)
    x = torch.rand(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    spikes = S.phase_encode(x, K=8, T=T).to(dev)
    pgd(net, spikes[:, :2], y[:2], 6 / 255, 0.01, 1, bn_mode="train", batch_dim=1)   # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    pgd(net, spikes, y, 6 / 255, 0.01, 7, bn_mode="train", batch_dim=1)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps per row (after 1 warm-up)")
    ap.add_argument("--full-steps", type=int, default=2, help="timed steps for the full-width SEW-ResNet-18")
    ap.add_argument("--pgd-batch", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-full", action="store_true", help="skip the full-width rows")
    args = ap.parse_args()
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.steps} timed steps/row after 1 warm-up; images/s of training (fwd+bwd+Adam), 3x32x32")
    narrow = dict(width=16, blocks=(1, 1, 1, 1))
    wider = dict(width=32, blocks=(2, 2, 2, 2))
    rows = []
    for name, kind, arch in (("SEW w16 [1,1,1,1]", "sew", narrow), ("SEW w32 [2,2,2,2]", "sew", wider)):
        for T in (8, 10):
            for stem in ("imagenet", "cifar"):
                rows.append((name, kind, arch, T, stem, args.steps))
    for stem in ("imagenet", "cifar"):
        rows.append(("Spiking w16 [1,1,1,1]", "spiking", narrow, 10, stem, args.steps))
    for stem in ("imagenet", "cifar"):
        rows.append(("ANN w16 [1,1,1,1]", "ann", narrow, None, stem, args.steps))
    if not args.no_full:
        rows.append(("SEW-ResNet-18 w64 full", "sew", dict(width=64, blocks=(2, 2, 2, 2)), 10, "imagenet",
                     args.full_steps))
    t_all = time.perf_counter()
    print(f"{'model':24s} {'T':>3s} {'stem':9s} {'img/s @16':>10s} {'img/s @64':>10s}")
    for name, kind, arch, T, stem, steps in rows:
        r = [train_rate(kind, **arch, T=T, stem=stem, batch=b, steps=steps, dev=dev) for b in (16, 64)]
        print(f"{name:24s} {T or '-':>3} {stem:9s} {r[0]:10.1f} {r[1]:10.1f}", flush=True)
    for stem in ("imagenet", "cifar"):
        s = pgd_seconds(**narrow, T=10, stem=stem, batch=args.pgd_batch, dev=dev)
        print(f"PGD-7 (eps 6/255, step 0.01) on {args.pgd_batch} images, SEW w16 [1,1,1,1] T=10 {stem}: "
              f"{s:.2f} s ({args.pgd_batch / s:.1f} images/s)", flush=True)
    print(f"total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
