"""CIFAR ResNets for paper C (PTQ under LiRA) and a stacked ensemble that trains many of them at once.

`ResNet` is the authors' model (QuTongxi/Quant-MIA, Codes/train.py): torchvision's ResNet with a 3×3
stride-1 stem conv and no max-pool. BasicBlock = conv3×3-BN-ReLU-conv3×3-BN + shortcut (1×1 conv with the
block's stride + BN when the shape changes), ReLU after the add; convs have no bias; init as torchvision
(Kaiming-normal fan_out convs, BN γ = 1, β = 0, default nn.Linear). blocks (2,2,2,2) / widths
(64,128,256,512) is their ResNet-18 (11.17 M parameters at 10 classes); blocks (3,3,3) is ResNet-20 and
(1,1,1) ResNet-8. Parameter names match torchvision's, so the authors' checkpoints load.

`Stacked` holds K ResNets of one architecture as one module: activations are laid out [B, K·C, H, W],
every conv is a grouped conv (groups = K), every BN a BatchNorm2d over K·C channels (per-channel batch
statistics = each model's own statistics over its own batch) and the fc a batched matmul. Every parameter
and buffer is the concatenation of the K models' tensors along dim 0, so SGD on the stack is K SGDs and
`stack` / `Stacked.unstack` are exact.

Speed (bench/bench_ensemble.py, 2 idle CPU cores, ResNet-8 w16, batch 128): one by one in channels_last
~1400 img/s per model (≈ 100 GFLOP/s, half the cores' peak), stacked K = 16 only ~700: a model's activations
(8 MB a layer) stay in the 32 MB L3 cache, a stack's (130 MB) do not, and per-op overhead is negligible at
batch 128. So on CPU the default is one by one (`stack=None` → 1) in channels_last (1.4× NCHW; vmap over
stacked parameters is slower still). Stacking pays where per-kernel launch overhead dominates, i.e. small
models on a GPU: there `stack=None` → 16, NCHW (not measured here).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from .progress import tqdm

from . import data as D

Query = str | int


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """CIFAR ResNet: 3×3 stem (stride 1, no max-pool) → stages of BasicBlocks (first stage stride 1, later
    stages stride 2 in their first block) → global average pool → fc. `arch` holds the constructor kwargs."""

    def __init__(self, blocks: Sequence[int] = (1, 1, 1), widths: Sequence[int] = (16, 32, 64), n_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError(f"blocks {blocks} and widths {widths} differ in length")
        self.arch = dict(blocks=tuple(blocks), widths=tuple(widths), n_classes=n_classes, in_channels=in_channels)
        self.conv1 = _conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = [BasicBlock(c if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            c = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.arch["blocks"]))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for stage in self.stages():
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def units(self) -> list[nn.Module]:
        """The network as a chain for block reconstruction (BRECQ-style PTQ): stem [conv1, bn1, relu], each
        BasicBlock, head [avgpool, flatten, fc]. The units share this model's layers; applied in order they
        compute `forward`."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu)
        head = nn.Sequential(self.avgpool, nn.Flatten(1), self.fc)
        return [stem, *[b for s in self.stages() for b in s], head]


# ----------------------------------------------------------------------------- stacked ensemble

class StackedLinear(nn.Module):
    """K linear layers on [B, K·C_in] → [K, B, C_out]; weight [K·C_out, C_in], bias [K·C_out] (models concatenated)."""

    def __init__(self, k: int, c_in: int, c_out: int):
        super().__init__()
        self.k, self.c_in, self.c_out = k, c_in, c_out
        self.weight = nn.Parameter(torch.empty(k * c_out, c_in))
        self.bias = nn.Parameter(torch.empty(k * c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(x.shape[0], self.k, self.c_in).transpose(0, 1)  # [K, B, C_in]
        w = self.weight.view(self.k, self.c_out, self.c_in).transpose(1, 2)
        return torch.baddbmm(self.bias.view(self.k, 1, self.c_out), h, w)


class Stacked(nn.Module):
    """K ResNets of one architecture computed as one network: input [K, B, C, H, W] (model k sees x[k]) →
    logits [K, B, n_classes], in train mode (per-model batch statistics) as in eval mode."""

    def __init__(self, arch: dict, k: int):
        super().__init__()
        self.arch, self.k = dict(arch), k
        net = ResNet(**arch)
        for name, mod in list(net.named_modules()):
            parent, _, leaf = name.rpartition(".")
            owner = net.get_submodule(parent)
            if isinstance(mod, nn.Conv2d):
                setattr(owner, leaf, nn.Conv2d(k * mod.in_channels, k * mod.out_channels, mod.kernel_size,
                                               stride=mod.stride, padding=mod.padding, bias=False, groups=k))
            elif isinstance(mod, nn.BatchNorm2d):
                setattr(owner, leaf, nn.BatchNorm2d(k * mod.num_features))
            elif isinstance(mod, nn.Linear):
                setattr(owner, leaf, StackedLinear(k, mod.in_features, mod.out_features))
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b, c, h, w = x.shape
        return self.net(x.transpose(0, 1).reshape(b, k * c, h, w))

    def unstack(self) -> list[ResNet]:
        """The K models as separate ResNets (exact copies of parameters and BN buffers, on this module's device)."""
        sd = self.net.state_dict()
        out = []
        for m in range(self.k):
            model = ResNet(**self.arch).to(next(self.parameters()).device)
            model.load_state_dict({n: t if n.endswith("num_batches_tracked") else t.unflatten(0, (self.k, -1))[m]
                                   for n, t in sd.items()})
            out.append(model)
        return out


def stack(models: Sequence[ResNet]) -> Stacked:
    """One `Stacked` module holding copies of `models` (same arch; BN num_batches_tracked must agree)."""
    arch = models[0].arch
    if any(m.arch != arch for m in models):
        raise ValueError("stack: models differ in architecture")
    sds = [m.state_dict() for m in models]
    st = Stacked(arch, len(models)).to(next(models[0].parameters()).device)
    merged = {}
    for n in sds[0]:
        if n.endswith("num_batches_tracked"):
            if len({int(sd[n]) for sd in sds}) > 1:
                raise ValueError(f"stack: models differ in {n}")
            merged[n] = sds[0][n]
        else:
            merged[n] = torch.cat([sd[n] for sd in sds])
    st.net.load_state_dict(merged)
    return st.train(models[0].training)


# ----------------------------------------------------------------------------- training

def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_stack(dev: torch.device) -> int:
    """Models per stack when `stack=None` (see the module docstring)."""
    return 1 if dev.type == "cpu" else 16


def memory_format(dev: torch.device) -> torch.memory_format:
    """The activation layout used on `dev` (see the module docstring)."""
    return torch.channels_last if dev.type == "cpu" else torch.contiguous_format


def data_seed(seed: int) -> int:
    """Seed of a model's data generator (batch order and augmentation), derived from its init seed."""
    return seed * 1000003 + 1


class _Stream:
    """A model's endless stream of member indices: successive fresh permutations of its members, drawn from
    its own generator, cut into batches of exactly `batch_size` (a batch may straddle two permutations)."""

    def __init__(self, members: np.ndarray, generator: torch.Generator):
        self.members = torch.as_tensor(np.asarray(members), dtype=torch.long)
        if len(self.members) == 0:
            raise ValueError("a model has no members")
        self.gen, self.order, self.pos = generator, torch.empty(0, dtype=torch.long), 0

    def next(self, batch_size: int) -> torch.Tensor:
        parts, need = [], batch_size
        while need:
            if self.pos == len(self.order):
                self.order, self.pos = self.members[torch.randperm(len(self.members), generator=self.gen)], 0
            take = self.order[self.pos:self.pos + need]
            parts.append(take)
            self.pos += len(take)
            need -= len(take)
        return torch.cat(parts)


def _init(arch: dict, seed: int) -> ResNet:
    torch.manual_seed(seed)
    return ResNet(**arch)


def _train_chunk(arch, x, y, members, seeds, *, epochs, steps, batch_size, lr, momentum, weight_decay, augment,
                 dev, desc) -> list[dict]:
    t0 = time.perf_counter()
    k = len(seeds)
    models = [_init(arch, s).to(dev) for s in seeds]
    net = (models[0] if k == 1 else stack(models)).to(memory_format=memory_format(dev))
    net.train()
    gens = [torch.Generator().manual_seed(data_seed(s)) for s in seeds]
    streams = [_Stream(mem, g) for mem, g in zip(members, gens)]
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    curves = [[] for _ in range(k)]
    bar = tqdm(range(epochs), desc=desc, leave=False, mininterval=1.0)
    for epoch in bar:
        loss_sum = torch.zeros(k, device=dev)
        correct = torch.zeros(k, device=dev)
        for _ in range(steps):
            xs, ys = [], []
            for stream, g in zip(streams, gens):
                idx = stream.next(batch_size).to(dev)
                xb = x[idx]
                xs.append(D.augment(xb, g) if augment else xb)
                ys.append(y[idx])
            yb = torch.stack(ys)                                         # [K, B]
            out = net(xs[0]) if k == 1 else net(torch.stack(xs))         # [B, C] or [K, B, C]
            out = out.view(k, batch_size, -1)
            losses = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(k, batch_size).mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # each model's gradient is that of its own mean loss
            opt.step()
            loss_sum += losses.detach()
            correct += (out.detach().argmax(-1) == yb).sum(1)
        sched.step()
        n = steps * batch_size
        for m, (l, c) in enumerate(zip((loss_sum / steps).tolist(), (correct / n).tolist())):
            curves[m].append({"epoch": epoch + 1, "loss": l, "train_acc": c})
        bar.set_postfix(loss=f"{float(loss_sum.mean()) / steps:.3f}", refresh=False)
    trained = [net] if k == 1 else net.unstack()
    seconds = (time.perf_counter() - t0) / k
    return [{"state_dict": {n: t.detach().cpu().contiguous().clone() for n, t in m.state_dict().items()},
             "seconds": seconds, "seed": s, "n_members": len(mem), "steps_per_epoch": steps, "curve": c}
            for m, s, mem, c in zip(trained, seeds, members, curves)]


def train(arch: dict, x: torch.Tensor, y: torch.Tensor, members: Sequence[np.ndarray], seeds: Sequence[int], *,
          epochs: int, batch_size: int = 128, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
          augment: bool = True, stack: int | None = None, device: str | torch.device | None = None,
          desc: str = "", first_index: int = 0) -> list[dict]:
    """Train one ResNet(**arch) per (members[m], seeds[m]) on x[members[m]], `stack` models at a time.

    Per model m, identical whether trained alone (stack = 1: a plain ResNet) or in a stack (up to float
    reassociation in the grouped convs):
    - init: torch.manual_seed(seeds[m]), then ResNet(**arch);
    - data: a torch.Generator seeded with data_seed(seeds[m]) draws, step by step, the model's batch (exactly
      `batch_size` indices from an endless stream of fresh permutations of its members, so member sets of
      slightly different sizes still give equal batches) and then its augmentation (lib.core.data.augment:
      4-px padded random crop + horizontal flip);
    - an epoch is ceil(mean member count / batch_size) steps, the same for every model;
    - SGD(lr, momentum, weight_decay) with CosineAnnealingLR(T_max=epochs) stepped once per epoch, as the
      authors' train.py; a stack minimises the sum of the models' mean cross-entropies, so each model gets
      its own gradient (SGD is elementwise: one SGD over stacked parameters = K SGDs).
    `stack=None`: default_stack(device), 1 on CPU, 16 on CUDA.
    `first_index` numbers the models in the progress bar (desc + index). Returns one dict per model: state_dict
    (CPU), seconds (its share of its stack's wall time), seed, n_members, steps_per_epoch, curve (per epoch: mean
    loss, running train accuracy).
    """
    if len(members) != len(seeds):
        raise ValueError(f"{len(members)} member sets for {len(seeds)} seeds")
    dev = _device(device)
    stack = stack or default_stack(dev)
    x, y = x.to(dev), y.to(dev)
    steps = math.ceil(float(np.mean([len(m) for m in members])) / batch_size)
    out = []
    for a in range(0, len(seeds), stack):
        b = min(a + stack, len(seeds))
        i, j = first_index + a, first_index + b - 1   # the models' numbers in the progress bar
        label = f"{desc} {i}" if b - a == 1 else f"{desc} {i}–{j}"
        out += _train_chunk(arch, x, y, list(members[a:b]), list(seeds[a:b]), epochs=epochs, steps=steps,
                            batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            augment=augment, dev=dev, desc=label.strip())
    return out


# ----------------------------------------------------------------------------- LiRA queries

QUERY_CHUNK = 4096  # random queries are drawn chunk by chunk of this many examples, whatever batch_size is


def _view(x: torch.Tensor, query: Query, gen: torch.Generator | None) -> torch.Tensor:
    if query == "none":
        return x
    if query == "flip":
        return x.flip(-1)
    return D.augment(x, gen)


@torch.no_grad()
def logits(states_or_models, arch: dict | None, x: torch.Tensor, *, queries: Sequence[Query] = ("none", "flip"),
           batch_size: int = 256, stack: int | None = None, device: str | torch.device | None = None) -> np.ndarray:
    """Eval-mode logits [M, N, A, C] (float32) of every model on every example of x under A queries.

    A query is "none" (x as is), "flip" (horizontal mirror) or an int s: one draw of the training
    augmentation (lib.core.data.augment) from a generator seeded with s, the same draw for every model.
    The authors' LiRA (Quant-MIA Codes/utils.py run_inference, n_queries = 2) queries each example twice
    through the *training* transform (random flip + 4-px random crop, seeded identically for every model),
    i.e. queries=(0, 1) here; ("none", "flip") is the deterministic pair of the original LiRA code.
    `states_or_models`: a list of state_dicts of ResNet(**arch), a list of modules, or one module (e.g. a
    quantized copy); state_dicts and plain ResNets are evaluated `stack` (None: default_stack) at a time as
    a `Stacked`, other modules one by one. Modules are put in eval mode and moved to the device.
    """
    dev = _device(device)
    stack = stack or default_stack(dev)
    items = [states_or_models] if isinstance(states_or_models, nn.Module) else list(states_or_models)
    if any(isinstance(it, dict) for it in items) and arch is None:
        raise ValueError("logits: state_dicts need `arch`")

    def as_module(it) -> nn.Module:
        if isinstance(it, dict):
            model = ResNet(**arch)
            model.load_state_dict(it)
            return model
        return it

    stackable = [type(it) is ResNet or isinstance(it, dict) for it in items]
    groups: list[list[int]] = []  # runs of consecutive stackable items, at most `stack` long; others alone
    for i, s in enumerate(stackable):
        if s and stack > 1 and groups and stackable[groups[-1][0]] and len(groups[-1]) < stack:
            groups[-1].append(i)
        else:
            groups.append([i])
    parts = [_group_logits([as_module(items[i]) for i in g], x, queries, batch_size, dev) for g in groups]
    return np.concatenate(parts)


def _group_logits(models: list[nn.Module], x: torch.Tensor, queries: Sequence[Query], batch_size: int,
                  dev: torch.device) -> np.ndarray:
    k = len(models)
    fmt = memory_format(dev)
    net = (stack([m.to(dev) for m in models]).to(memory_format=fmt) if k > 1 else models[0].to(dev)).eval()
    gens = {q: torch.Generator().manual_seed(q) for q in queries if not isinstance(q, str)}
    out = None
    for c0 in range(0, len(x), QUERY_CHUNK):
        chunk = x[c0:c0 + QUERY_CHUNK]
        views = [_view(chunk, q, gens.get(q)) for q in queries]
        for b0 in range(0, len(chunk), batch_size):
            for a, v in enumerate(views):
                xb = v[b0:b0 + batch_size].to(dev).contiguous(memory_format=fmt)
                res = (net(xb.expand(k, *xb.shape)) if k > 1 else net(xb)[None]).float().cpu().numpy()
                if out is None:
                    out = np.empty((k, len(x), len(queries), res.shape[-1]), np.float32)
                out[:, c0 + b0:c0 + b0 + len(xb), a] = res
    return out
