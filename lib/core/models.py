"""Table I of paper A: ConvNet and FCNet, each as an ANN (ReLU) or an SNN (LIF, T steps).

    ConvNet: conv(32) → maxpool 2 → act → conv(64) → maxpool 2 → act → FC 1000 → act → FC classes
    FCNet:   FC 1000 → act → FC classes

ANN: act = ReLU (or brevitas QuantReLU clipped at θ); output = logits.
SNN: act = LIF (β, θ; optional state_quant on the membrane); the output layer is a LIF layer too and
the network's output is its membrane potential U_out[t], t = 1..T. With `act_bits`, state_quant acts on every
LIF layer's membrane, the output layer's included (`quant_output=True`, the default); `quant_output=False`
leaves the output membrane (the network's output) continuous and quantizes the hidden LIF layers only. Loss and prediction use the
`readout` of that trace: "last" = U_out[T] (the authors' code), "mean" = mean over t.
Every linear/conv layer may be weight-quantized (brevitas QuantLinear/QuantConv2d).

The SNN is evaluated layer by layer over all T steps at once: each conv/linear layer runs once on a
[T·B, ...] batch and each LIF layer runs its recurrence over T (lib.core.neurons.LIF). With a static input
encoding (direct) the first layer sees the same input at every step, so it is computed once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import encoders as enc
from . import quant
from .neurons import LIF, surrogate
from .vocab import ARCHS, KINDS, READOUTS  # noqa: F401  (the names params.yaml uses, written once there)


@dataclass
class SNNConfig:
    beta: float = 0.95
    threshold: float = 1.0
    steps: int = 25
    surrogate: str = "fast_sigmoid"
    surrogate_kwargs: dict = field(default_factory=lambda: {"slope": 25})
    encoding: str = "direct"
    encoding_kwargs: dict = field(default_factory=dict)
    readout: str = "last"


def _layers(arch, input_shape, n_classes, hidden, channels, kernel, padding, weight_bits):
    """The weighted layers of Table I, each followed by its pooling (or nothing)."""
    if arch == "fcnet":
        (n_in,) = input_shape
        return [quant.linear(n_in, hidden, weight_bits), quant.linear(hidden, n_classes, weight_bits)], [None, None]
    c, h, w = input_shape
    c1, c2 = channels
    flat = c2 * (h // 4) * (w // 4)
    ops = [quant.conv2d(c, c1, kernel, padding, weight_bits), quant.conv2d(c1, c2, kernel, padding, weight_bits),
           nn.Sequential(nn.Flatten(), quant.linear(flat, hidden, weight_bits)),
           quant.linear(hidden, n_classes, weight_bits)]
    return ops, [nn.MaxPool2d(2), nn.MaxPool2d(2), None, None]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


class Net(nn.Module):
    """ANN or SNN of Table I. forward(x) -> [B, classes] scores used for the loss, prediction and attack."""

    def __init__(self, arch: str, kind: str, input_shape, n_classes: int, *, hidden: int = 1000,
                 channels=(32, 64), kernel: int = 3, padding: int = 1, weight_bits: int | None = None,
                 act_bits: int | None = None, act_threshold: float | None = None, snn: SNNConfig | None = None,
                 intensity_range=(0.0, 1.0), quant_output: bool = True):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHS}")
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r} (parameter `kinds`); choose one of {KINDS}")
        self.arch, self.kind = arch, kind
        ops, pools = _layers(arch, tuple(input_shape), n_classes, hidden, channels, kernel, padding, weight_bits)
        self.ops = nn.ModuleList(ops)
        self.pools = nn.ModuleList([p if p is not None else nn.Identity() for p in pools])
        self.record_spikes = False
        self.spike_counts: list[float] = []
        if kind == "ann":
            theta = 1.0 if act_threshold is None else act_threshold
            self.acts = nn.ModuleList([quant.quant_relu(act_bits, theta) for _ in ops[:-1]])
            self.snn = None
        else:
            self.snn = snn = snn or SNNConfig()
            if snn.readout not in READOUTS:
                raise ValueError(f"`readout` must be one of {READOUTS}, got {snn.readout!r}")
            if int(snn.steps) < 1:
                raise ValueError(f"`steps` must be a positive integer, got {snn.steps}")
            theta = snn.threshold if act_threshold is None else act_threshold
            sq = quant.state_quant(act_bits, theta) if act_bits else None
            spike_fn = surrogate(snn.surrogate, **snn.surrogate_kwargs)
            # quant_output=False: the output LIF layer (the last one; its membrane is the network's output and
            # the attack's feature vector) keeps a continuous membrane; the hidden LIF layers are still quantized
            last = len(ops) - 1
            self.lifs = nn.ModuleList([LIF(snn.beta, theta, spike_fn, sq if (i < last or quant_output) else None)
                                       for i in range(len(ops))])
            low, high = intensity_range
            self.encoder = enc.build_encoder(snn.encoding, low=low, high=high, **snn.encoding_kwargs) \
                if snn.encoding != "direct" else enc.build_encoder("direct")
        if arch == "convnet":   # channels-last conv weights and activations: mkldnn conv and max-pool run 2-3x faster
            self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ ANN
    def _ann(self, x):
        x = _channels_last(x)
        for i, op in enumerate(self.ops):
            x = self.pools[i](op(x))
            if i < len(self.ops) - 1:
                x = self.acts[i](x)
        return x

    # ------------------------------------------------------------------ SNN
    def trace(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Output-layer membrane potential at every step, [T, B, classes]."""
        T, B = self.snn.steps, x.shape[0]
        counts = []
        h = None
        for i, (op, pool, lif) in enumerate(zip(self.ops, self.pools, self.lifs)):
            if i == 0 and self.encoder.static:
                cur = pool(op(_channels_last(x)))
                cur = cur.unsqueeze(0).expand(T, *cur.shape)
            else:
                inp = (self.encoder(x, T, generator) if i == 0 else h).flatten(0, 1)
                cur = pool(op(_channels_last(inp)))
                cur = cur.unflatten(0, (T, B))
            h, mem = lif(cur)
            if self.record_spikes:
                counts.append(float(h.detach().sum()) / B)
        if self.record_spikes:
            self.spike_counts = counts
        return mem

    def readout(self, trace: torch.Tensor) -> torch.Tensor:
        return trace[-1] if self.snn.readout == "last" else trace.mean(0)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.kind == "ann":
            return self._ann(x)
        return self.readout(self.trace(x, generator))



def snntorch_step_loop(net: Net, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The same SNN written the usual snntorch way — one `snntorch.Leaky` call per layer per step, every
    layer re-run every step — sharing `net`'s weights. Returns the output membrane trace [T, B, classes].
    The reference for tests/test_models.py and bench/bench_snn.py (direct encoding only)."""
    import snntorch as snn
    cfg = net.snn
    if cfg.encoding != "direct":
        raise ValueError("snntorch_step_loop supports the direct encoding only")
    beta = torch.tensor(cfg.beta, dtype=dtype or x.dtype)
    fn = surrogate(cfg.surrogate, **cfg.surrogate_kwargs)
    lifs = [snn.Leaky(beta=beta, threshold=lif.threshold, spike_grad=fn, reset_mechanism="subtract",
                      state_quant=lif.state_quant or False) for lif in net.lifs]
    mems = [lif.init_leaky() for lif in lifs]
    trace = []
    for _ in range(cfg.steps):
        h = x
        for i, (op, pool, lif) in enumerate(zip(net.ops, net.pools, lifs)):
            h, mems[i] = lif(pool(op(h)), mems[i])
        trace.append(mems[-1])
    return torch.stack(trace)
