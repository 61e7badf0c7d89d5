"""A stacked ensemble of K tabular FCNets (lib.core.models.Net, arch "fcnet"), trained as one batched computation.

The tabular MLP/SNN families (Iris, Breast Cancer: FC n_in → 1000 → act → FC classes, batch 16, Adam, ~100
epochs, hundreds of models per run) are overhead-bound on CPU: one model's step is a few hundred tiny ops. Here
K models of one recipe run as one: every weight is the K models' weights stacked on a new dim 0 (Linear layout:
w [K, in, out] — the transpose of nn.Linear's, so that bmm reads it and writes its gradient without a transposing
copy — and b [K, out]) and every linear layer is one `torch.baddbmm` over [K, rows, in]. The SNN's LIF
layers are lib.core.neurons.LIF (the same autograd Function and surrogate) run on [T, K, B, H]; its activations
are laid out [K, T, B, H] in memory (LIF is handed a transposed view and keeps its strides), so the next
layer's input is a free view [K, T·B, H]. Stochastic encoders are called once per model on that model's batch
with that model's generator, so a stacked run draws exactly what the models draw one by one.

`stack(nets)` / `StackedFC.unstack()` copy weights exactly. `fit_stacked` trains K models as lib.core.train.fit
trains each: per model its own generator seeded with init_seed(unit) (a fresh randperm of its member pool per
epoch, then its encoder noise batch after batch), one optimizer over the stacked parameters (Adam and SGD are
elementwise with a shared step count, so one over [K, ...] tensors is K of them), the sum of the models' mean
cross-entropies as loss (each model gets exactly its own gradient), and per-model learning curves as `fit`'s.
Equal to one-by-one training up to float reassociation in bmm vs mm (tests/test_stack_fc.py). `fit` seeds the
global RNG too; nothing in these nets' training draws from it, so `fit_stacked` leaves it alone.

Supported: what the tabular grids use — fcnet, no weight/activation quantization, no DP-SGD, no frozen layers,
no augmentation, equal member-pool and eval-pool sizes across the stack. Anything else raises ValueError naming
the unit key.

Speed (bench/bench_tabular.py, Breast-Cancer shape, T = 25, 1 thread, 2-core EPYC shared with other jobs; best of
2 interleaved runs): ANN K = 16 2.5× one by one (2.8× with `fused_adam`), K = 4 1.9×; SNN K = 16 1.2-1.3×, K = 4
1.0×. Only the ANN is overhead-bound: there the stack removes per-op overhead and what is left is elementwise
Adam over the parameters (~47% of a stacked step; it is the same work one by one) and small bmms. The SNN is not
overhead-bound at T = 25, hidden 1000: one model's step is ~6 ms, ~80% of it the LIF layers' elementwise passes
(lib.core.neurons, ~11-13 ns per neuron-step whether K is 1 or 16), which stacking cannot shrink; at K = 16
its activations ([T, K, B, H] = 25.6 MB a tensor) also leave the L2/L3 caches. Faster SNNs need a fused LIF
kernel or a GPU (where stacking removes kernel-launch overhead), not a wider stack.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import data as D
from .models import Net
from .neurons import LIF, _LIFFunction
from .train import optimizer, pools_for
from .units import init_seed

# unit keys that must agree across a stack (one optimizer, one batch schedule, one network shape and neuron model)
RECIPE_KEYS = ("kind", "arch", "hidden", "optimizer", "lr", "weight_decay", "batch_size", "epochs", "act_threshold",
               "beta", "threshold", "steps", "surrogate", "surrogate_kwargs", "encoding", "encoding_kwargs", "readout")


def check_units(units: Sequence[dict]) -> None:
    """ValueError naming the unit key when a unit is outside what the stack supports, or when the units'
    recipes (RECIPE_KEYS) differ."""
    if not units:
        raise ValueError("fit_stacked: no units")
    for u in units:
        if u.get("arch") != "fcnet":
            raise ValueError(f"stacked training supports arch `fcnet` only (unit key `arch` = {u.get('arch')!r})")
        for key in ("weight_bits", "act_bits"):
            if u.get(key) is not None:
                raise ValueError(f"stacked training does not support quantization (unit key `{key}` = {u[key]!r})")
        if u.get("dp"):
            raise ValueError(f"stacked training does not support DP-SGD (unit key `dp` = {u['dp']!r})")
        if u.get("frozen"):
            raise ValueError(f"stacked training does not support frozen layers (unit key `frozen` = {u['frozen']!r})")
    for key in RECIPE_KEYS:
        vals = [u.get(key) for u in units]
        if any(v != vals[0] for v in vals):
            raise ValueError(f"stacked units must share unit key `{key}`, got {vals}")


def _check_nets(nets: Sequence[Net]) -> None:
    """The Nets must be plain fcnets (nn.Linear, ReLU / unquantized LIF) of one shape and one neuron model."""
    if not nets:
        raise ValueError("stack: no models")
    ref = nets[0]
    for net in nets:
        if net.arch != "fcnet":
            raise ValueError(f"stack supports arch `fcnet` only, got {net.arch!r}")
        if net.kind != ref.kind:
            raise ValueError(f"stack: models differ in kind ({net.kind!r} vs {ref.kind!r})")
        if any(type(op) is not nn.Linear for op in net.ops):
            raise ValueError("stack does not support weight quantization (unit key `weight_bits`)")
        if [tuple(p.shape) for p in net.parameters()] != [tuple(p.shape) for p in ref.parameters()]:
            raise ValueError("stack: models differ in shape")
        if net.kind == "ann":
            if any(type(a) is not nn.ReLU for a in net.acts):
                raise ValueError("stack does not support quantized activations (unit key `act_bits`)")
        else:
            if any(l.state_quant is not None for l in net.lifs):
                raise ValueError("stack does not support membrane quantization (unit key `act_bits`)")
            if net.snn != ref.snn or net.encoder != ref.encoder or \
                    [(l.beta, l.threshold) for l in net.lifs] != [(l.beta, l.threshold) for l in ref.lifs]:
                raise ValueError("stack: SNN models differ in their neuron model, steps, encoder or readout")


class _LIFUnmaterialized(_LIFFunction):
    """lib.core.neurons' LIF Function, forward and backward unchanged, except that an output nobody used reaches the
    backward as None rather than as a tensor of zeros (its backward handles None: no surrogate call for unused
    spikes, no adding zeros for an unused membrane). Saves a zero-fill and T additions over [T, K, B, H]."""

    @staticmethod
    def forward(ctx, current, beta, threshold, spike_fn, state_quant):
        ctx.set_materialize_grads(False)
        return _LIFFunction.forward(ctx, current, beta, threshold, spike_fn, state_quant)


class _StackLIF(LIF):
    def forward(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _LIFUnmaterialized.apply(current, self.beta, self.threshold, self.spike_fn, self.state_quant)


class StackedFC(nn.Module):
    """K fcnets as one module: x [K, B, n_in] (model k sees x[k]) → scores [K, B, classes] (ANN logits, SNN
    readout of the output membrane). Parameters w1 [K, n_in, hidden], b1 [K, hidden], w2 [K, hidden, classes],
    b2 [K, classes]: the K Nets' ops[0] / ops[1] weights, transposed, and biases stacked."""

    def __init__(self, nets: Sequence[Net]):
        super().__init__()
        _check_nets(nets)
        self.k, self.kind = len(nets), nets[0].kind
        with torch.no_grad():
            for i, name in enumerate(("1", "2")):
                w = torch.stack([n.ops[i].weight.t() for n in nets])   # stack copies: contiguous [K, in, out]
                self.register_parameter("w" + name, nn.Parameter(w))
                self.register_parameter("b" + name, nn.Parameter(torch.stack([n.ops[i].bias for n in nets])))
        self._template = [copy.deepcopy(nets[0]).cpu()]   # a list: not a submodule, its weights are not ours
        if self.kind == "snn":
            ref = nets[0]
            self.snn, self.encoder = ref.snn, ref.encoder
            self.lifs = nn.ModuleList([_StackLIF(l.beta, l.threshold, l.spike_fn, None) for l in ref.lifs])

    def _linear(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Layer i (0 or 1) of every model: [K, rows, in] → [K, rows, out]."""
        w, b = (self.w1, self.b1) if i == 0 else (self.w2, self.b2)
        return torch.baddbmm(b.unsqueeze(1), x, w)

    def encode(self, x: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None) -> torch.Tensor:
        """SNN input of every model: x itself [K, B, n_in] for a static (direct) encoder, else the encoded spikes
        [K, T, B, n_in], model k's drawn from generators[k] exactly as Net draws them (one encoder call per model)."""
        if self.encoder.static:
            return x
        K, T = x.shape[0], self.snn.steps
        gens = list(generators) if generators is not None else [None] * K
        if len(gens) != K:
            raise ValueError(f"{len(gens)} generators for {K} models")
        return torch.stack([self.encoder(x[k], T, gens[k]) for k in range(K)])

    def trace_encoded(self, inp: torch.Tensor) -> torch.Tensor:
        """Output membrane [T, K, B, classes] of an `encode`d input. Examples are independent, so the input may be
        cut along B (predict_stacked does, to keep the working set in cache)."""
        T, K = self.snn.steps, inp.shape[0]
        if self.encoder.static:   # the same current at every step: one matmul, laid out [K, T, B, H]
            cur = self._linear(inp, 0)
            cur = cur.unsqueeze(1).expand(K, T, *cur.shape[1:]).contiguous().transpose(0, 1)
        else:
            B = inp.shape[2]
            cur = self._linear(inp.flatten(1, 2), 0).unflatten(1, (T, B)).transpose(0, 1)
        B = cur.shape[2]
        spikes, _ = self.lifs[0](cur)                     # [T, K, B, H], memory [K, T, B, H]
        cur = self._linear(spikes.transpose(0, 1).reshape(K, T * B, -1), 1).unflatten(1, (T, B)).transpose(0, 1)
        _, mem = self.lifs[1](cur)
        return mem

    def trace(self, x: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None) -> torch.Tensor:
        """SNN output membrane at every step, [T, K, B, classes]; model k's encoder noise from generators[k]."""
        return self.trace_encoded(self.encode(x, generators))

    def readout(self, trace: torch.Tensor) -> torch.Tensor:
        return trace[-1] if self.snn.readout == "last" else trace.mean(0)

    def forward(self, x: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None) -> torch.Tensor:
        if self.kind == "ann":
            return self._linear(torch.relu(self._linear(x, 0)), 1)
        return self.readout(self.trace(x, generators))

    @torch.no_grad()
    def unstack(self, into: Sequence[Net] | None = None) -> list[Net]:
        """The K models as Nets: exact copies of the stacked weights, written into `into` (K Nets of this shape,
        e.g. the ones stacked; their parameters keep their device and dtype) or into fresh copies of the first
        stacked Net (on this module's device and dtype)."""
        if into is None:
            into = [copy.deepcopy(self._template[0]).to(self.w1.device, self.w1.dtype) for _ in range(self.k)]
        if len(into) != self.k:
            raise ValueError(f"unstack: {len(into)} models for a stack of {self.k}")
        for m, net in enumerate(into):
            for i, name in enumerate(("1", "2")):
                net.ops[i].weight.copy_(getattr(self, "w" + name)[m].t())
                net.ops[i].bias.copy_(getattr(self, "b" + name)[m])
        return list(into)


def stack(nets: Sequence[Net]) -> StackedFC:
    """One StackedFC holding copies of `nets`' weights (same shape, kind and neuron model; on their device)."""
    return StackedFC(nets).to(next(nets[0].parameters()).device)


STACK_ROWS = 256   # K·B examples per stacked forward when scoring: a training step's size at K = 16, batch 16


@torch.no_grad()
def predict_stacked(net: StackedFC, x: torch.Tensor, seeds: Sequence[int], batch_size: int = 512) -> torch.Tensor:
    """lib.core.train.predict for each model of the stack: x [K, N, n_in] → outputs [K, N, classes]; model k's
    stochastic encoder draws from a generator seeded with seeds[k], in batches of `batch_size` as predict does.
    Each batch's encoding is drawn whole and then run through the network in slices of STACK_ROWS // K
    examples: a [T, K, 512, 1000] activation would leave the cache (and examples do not interact)."""
    net.eval()
    k = x.shape[0]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    rows = max(1, STACK_ROWS // k)
    outs = []
    for i in range(0, x.shape[1], batch_size):
        xb = x[:, i:i + batch_size]
        if net.kind == "ann":
            outs.append(net(xb))
            continue
        inp = net.encode(xb, gens)
        b_dim = 1 if net.encoder.static else 2
        outs += [net.readout(net.trace_encoded(part)) for part in inp.split(rows, dim=b_dim)]
    return torch.cat(outs, dim=1)


def _equal_sizes(tensors: Sequence[torch.Tensor], what: str) -> None:
    sizes = [len(t) for t in tensors]
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"stacked training needs equal {what} sizes across models, got {sizes}")


def fit_stacked(models: Sequence[Net], units: Sequence[dict], xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor],
                x_evals: Sequence[torch.Tensor], y_evals: Sequence[torch.Tensor], *, dev: torch.device | str = "cpu",
                curve_eval_size: int = 500, eval_batch_size: int = 512, fused_adam: bool = False) -> list[list[dict]]:
    """Train models[m] on (xs[m], ys[m]) as lib.core.train.fit trains it alone with unit units[m]; the models are
    updated in place. Returns per model fit's learning curve (per epoch: mean loss, running train accuracy, test
    accuracy on at most `curve_eval_size` examples of (x_evals[m], y_evals[m]), scored with predict's seed
    init_seed + 1). Member pools must have equal sizes, as must the (truncated) eval pools.
    `fused_adam`: torch's fused Adam kernel (one pass over the stacked parameters; ANN stacks train ~1.3× faster)
    instead of the single-tensor Adam that `fit` uses on CPU. Same update formula, but not bit-equal: it rounds
    differently in about 1% of elements per step (by 1 ulp), so off by default."""
    check_units(units)
    if not (len(models) == len(units) == len(xs) == len(ys) == len(x_evals) == len(y_evals)):
        raise ValueError("fit_stacked: models, units, xs, ys, x_evals and y_evals differ in length")
    _equal_sizes(xs, "member-pool")
    x_evals = [x[:curve_eval_size] for x in x_evals]
    y_evals = [y[:curve_eval_size] for y in y_evals]
    _equal_sizes(x_evals, "eval-pool")
    dev = torch.device(dev)
    u0, k = units[0], len(models)
    seeds = [init_seed(u) for u in units]
    gens = [torch.Generator().manual_seed(s) for s in seeds]   # batch order and encoder noise, per model
    x_in, y_in = torch.stack(list(xs)).to(dev), torch.stack(list(ys)).to(dev)           # [K, n, F], [K, n]
    x_ev, y_ev = torch.stack(x_evals).to(dev), torch.stack(y_evals).to(dev)
    net = stack(models).to(dev)
    opt = optimizer(net.parameters(), u0, **({"fused": True} if fused_adam else {}))
    bs, n = u0["batch_size"], x_in.shape[1]
    rows = torch.arange(k, device=dev).unsqueeze(1)
    curves: list[list[dict]] = [[] for _ in range(k)]
    for epoch in range(u0["epochs"]):
        net.train()
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)   # [K, n]
        tot_loss = torch.zeros(k, dtype=torch.float64, device=dev)   # fit sums Python floats: float64
        tot_correct = torch.zeros(k, dtype=torch.float64, device=dev)
        for i in range(0, n, bs):
            idx = order[:, i:i + bs]
            xb, yb = x_in[rows, idx], y_in[rows, idx]                   # [K, b, F], [K, b]
            out = net(xb, gens)                                         # [K, b, C]
            losses = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(k, -1).mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()   # d(sum)/d(loss_m) = 1: model m gets the gradient of its own mean loss
            opt.step()
            tot_loss += losses.detach().double() * idx.shape[1]
            tot_correct += (out.detach().argmax(-1) == yb).sum(1).double()
        pred = predict_stacked(net, x_ev, [s + 1 for s in seeds], eval_batch_size)
        test_acc = (pred.argmax(-1) == y_ev).float().mean(1)
        for m, (l, c, a) in enumerate(zip((tot_loss / n).tolist(), (tot_correct / n).tolist(), test_acc.tolist())):
            curves[m].append({"epoch": epoch + 1, "loss": l, "train_acc": c, "test_acc": a})
    net.unstack(into=models)
    return curves


def fit_units(models: Sequence[Net], units: Sequence[dict], data: D.Tensors, splits: Sequence[dict], *,
              dev: torch.device | str = "cpu", curve_eval_size: int = 500, eval_batch_size: int = 512,
              fused_adam: bool = False) -> list[list[dict]]:
    """`fit_stacked` on the pools `fit` uses: model m trains on its member pool of splits[m] (target_in or
    shadow_in by its role) and is scored on the eval pool. Tabular data only (no augmentation)."""
    if data.augment:
        raise ValueError(f"stacked training does not support augmentation (dataset {data.name!r} augments)")
    train = [D.pool(data, s, pools_for(u)[0]) for u, s in zip(units, splits)]
    evals = [D.pool(data, s, "eval") for s in splits]
    return fit_stacked(models, units, [x for x, _ in train], [y for _, y in train], [x for x, _ in evals],
                       [y for _, y in evals], dev=dev, curve_eval_size=curve_eval_size, eval_batch_size=eval_batch_size,
                       fused_adam=fused_adam)
