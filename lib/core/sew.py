"""SEW-ResNet / Spiking-ResNet / ANN-ResNet and phase coding for paper D (gradient sparsity ↔ robustness).

What the authors' code (luutn2002/grad-obf-snn, source/model.py, source/encoder.py, source/sew_resnet.py)
does, and what this module reproduces:

* SEW-ResNet: spikingjelly ``sew_resnet{18,34,50}`` with ``cnf="ADD"``, ``spiking_neuron=neuron.IFNode``
  (v_threshold 1, hard reset to v_reset 0), ``surrogate_function=surrogate.ATan()`` (alpha 2),
  ``detach_reset=True``; ImageNet stem (7×7 stride-2 conv, BN, IF, 3×3 stride-2 pad-1 pool), multi-step mode
  (``functional.set_step_mode(net, "m")``), output = mean of the per-step logits over T.
  Their avg-pool variant passes ``pooling_layer=layer.AvgPool2d`` (same kernel 3 / stride 2 / padding 1,
  spikingjelly's defaults otherwise, i.e. ``count_include_pad=True``) in place of ``layer.MaxPool2d``.
* Spiking-ResNet ("spk"): spikingjelly ``spiking_resnet{18,34,50}`` with ``DefaultAtanIFNode`` =
  ``IFNode(surrogate_function=ATan())`` and nothing else, so **detach_reset=False** there (spikingjelly's
  default) — reproduced as is; the authors have no avg-pool variant of it (``pool`` works here anyway).
* Phase coding: ``encoding.WeightedPhaseEncoder(K=8)`` on ``x/256`` where x are integer pixels 0..255,
  called T = 10 times (stateful: step t gives phase t mod K), stacked to [T, B, C, H, W]; the input is
  detached; the bit weights 2^-(k+1) are NOT applied to the spikes (the net sees plain 0/1 spikes).

Stem for 32×32 CIFAR inputs: the authors keep the ImageNet stem (32×32 → 16×16 conv → 8×8 pool → 1×1 at
layer4). ``stem="imagenet"`` is the default; ``stem="cifar"`` swaps the stem conv for 3×3 stride 1 pad 1
and KEEPS the 3×3/2 pool (so max-vs-avg remains the one architectural difference the paper studies);
``pool="none"`` drops the pool (``nn.Identity``) for a standard CIFAR ResNet stem.

Narrow / shallow quick models: spikingjelly's and torchvision's ResNets hard-code the stage widths
64/128/256/512 (``width_per_group`` is the bottleneck-width knob and BasicBlock refuses anything but 64),
so the three nets here are thin subclasses (``SEWResNet``, ``SpikingResNet``, ``ANNResNet``) whose
``__init__`` mirrors the library constructor with stage widths ``width·(1, 2, 4, 8)`` and ``blocks`` per stage;
blocks, ``_make_layer`` and ``forward`` are the library's own. At ``width=64`` and the standard ``blocks``
the modules, parameter names/shapes and even the random initialisation (same RNG draw order) are identical to
``sew_resnet.sew_resnet18(...)`` / ``spiking_resnet.spiking_resnet18(...)`` / ``torchvision.models.resnet18()``.
The stem pool stays in the attribute ``maxpool`` (the library forward calls ``self.maxpool``) even when it
is an average pool.

Public API: ``phase_encode``, ``build``, ``SpikingClassifier``, ``EncodedClassifier``, ``BPDAClassifier``,
``FramesClassifier``, ``MeanFrameClassifier`` (event data),
``swap_surrogate``, ``neuron_settings``, ``stem_pool``, ``ARCHS``, ``fit`` (the authors' Adam training recipe).
"""
from __future__ import annotations

from copy import deepcopy
from collections.abc import Sequence

import torch
import torchvision
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet, spiking_resnet
from torch import nn

from .vocab import SEW_ARCHS, SEW_SURROGATES, same_names

# arch -> (block kind, blocks per stage)
ARCHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
same_names(ARCHS, SEW_ARCHS, "lib.core.sew.ARCHS")
_BLOCKS = {
    "sew": {"basic": sew_resnet.BasicBlock, "bottleneck": sew_resnet.Bottleneck},
    "spiking": {"basic": spiking_resnet.BasicBlock, "bottleneck": spiking_resnet.Bottleneck},
    "ann": {"basic": torchvision.models.resnet.BasicBlock,
            "bottleneck": torchvision.models.resnet.Bottleneck},
}


# --------------------------------------------------------------------------------------------- encoding
def phase_encode(x: torch.Tensor, K: int = 8, T: int = 10) -> torch.Tensor:
    """Weighted phase coding (Kim et al. 2018) as the authors use it: returns spikes [T, *x.shape] in {0, 1}.

    ``x``: uint8 / integer pixels 0..255, or floats in [0, 1] (pixel value v = round(255·x), clamped).
    The value encoded is v/256 (the authors' ``x/256`` on integer pixels); phase k = 0..K-1 carries bit k+1
    of the binary expansion of v/256, MSB first, i.e. ``floor(v·2^(k+1)/256) mod 2`` (for K = 8 the 8 bits
    of v, MSB first; K < 8 truncates, extra phases beyond 8 are 0). Step t emits phase ``t mod K`` (T > K
    repeats the cycle, as the stateful spikingjelly encoder does when called T times). Spikes are float
    (x's dtype if floating, else float32), on x's device, detached; bit weights 2^-(k+1) are not applied.

    Relation to spikingjelly: ``encoding.WeightedPhaseEncoder(K)`` encodes y ∈ [0, 1 − 2^-K] by greedy
    subtraction of weights 2^-1, 2^-2, ... (spike[k] = [y_k ≥ 2^-(k+1)], y_{k+1} = y_k − 2^-(k+1)·spike[k]),
    which for y = v/256 (dyadic, exact in float) are exactly the binary digits above. So
    ``phase_encode(v, K, T)[t] == WeightedPhaseEncoder(K)(v/256)`` at its t-th call, for every v in 0..255
    when K ≥ 8 (for K < 8 its range check rejects v/256 > 1 − 2^-K; on the values it accepts we agree).
    """
    if x.dtype.is_floating_point:
        v = torch.round(x.detach().clamp(0, 1) * 255).to(torch.int64)
        out_dtype = x.dtype
    else:
        v = x.detach().to(torch.int64).clamp(0, 255)
        out_dtype = torch.float32
    k = torch.arange(K, device=x.device).view((K,) + (1,) * v.dim())
    bits = torch.div(v.unsqueeze(0) * (2 ** (k + 1)), 256, rounding_mode="floor") % 2  # [K, *x.shape]
    idx = torch.arange(T, device=x.device) % K
    return bits[idx].to(out_dtype)


# --------------------------------------------------------------------------------------------- models
def neuron_settings(kind: str) -> tuple[type, dict]:
    """(neuron class, kwargs) of the authors' spiking neurons for kind "sew" / "spiking"."""
    if kind == "sew":   # source/model.py, variant "sew"
        return neuron.IFNode, dict(surrogate_function=surrogate.ATan(), detach_reset=True)
    if kind == "spiking":   # DefaultAtanIFNode: IFNode(surrogate_function=ATan()), detach_reset default False
        return neuron.IFNode, dict(surrogate_function=surrogate.ATan())
    raise ValueError(f"no spiking neuron for kind {kind!r}")


def _stem_conv(conv_cls, width: int, stem: str, in_channels: int = 3):
    if stem == "imagenet":
        return conv_cls(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    if stem == "cifar":
        return conv_cls(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
    raise ValueError(f"stem must be 'imagenet' or 'cifar', not {stem!r}")


def _stem_pool(pool: str, spiking: bool) -> nn.Module:
    if pool == "max":
        return (layer.MaxPool2d if spiking else nn.MaxPool2d)(kernel_size=3, stride=2, padding=1)
    if pool == "avg":
        return (layer.AvgPool2d if spiking else nn.AvgPool2d)(kernel_size=3, stride=2, padding=1)
    if pool == "none":
        return nn.Identity()
    raise ValueError(f"pool must be 'max', 'avg' or 'none', not {pool!r}")


def _init_body(self, block, blocks, widths, num_classes, stem, pool, spiking, act, make_layer_kw, in_channels=3):
    """Mirror of the library ResNet constructors (same module order → same RNG draws), widths/blocks free."""
    conv_cls, bn_cls = (layer.Conv2d, layer.BatchNorm2d) if spiking else (nn.Conv2d, nn.BatchNorm2d)
    self._norm_layer = bn_cls
    self.inplanes = widths[0]
    self.dilation = 1
    self.groups = 1
    self.base_width = 64
    self.conv1 = _stem_conv(conv_cls, widths[0], stem, in_channels)
    self.bn1 = bn_cls(widths[0])
    if spiking:
        self.sn1 = act()
    else:
        self.relu = act()
    self.maxpool = _stem_pool(pool, spiking)   # name kept: the library forward calls self.maxpool
    for i, (w, n) in enumerate(zip(widths, blocks)):
        setattr(self, f"layer{i + 1}",
                self._make_layer(block, w, n, stride=1 if i == 0 else 2, **make_layer_kw))
    if spiking:
        self.avgpool = layer.AdaptiveAvgPool2d((1, 1))
        self.fc = layer.Linear(widths[-1] * block.expansion, num_classes)
    else:
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)
    for m in self.modules():
        if isinstance(m, conv_cls):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (bn_cls, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


class SEWResNet(sew_resnet.SEWResNet):
    """spikingjelly SEW-ResNet with free stage widths / blocks, stem and stem pool (forward = library's)."""

    def __init__(self, block, blocks, widths, num_classes, *, stem="imagenet", pool="max", cnf="ADD",
                 spiking_neuron=neuron.IFNode, in_channels=3, **neuron_kw):
        nn.Module.__init__(self)
        _init_body(self, block, blocks, widths, num_classes, stem, pool, True,
                   lambda: spiking_neuron(**deepcopy(neuron_kw)),
                   dict(cnf=cnf, spiking_neuron=spiking_neuron, **neuron_kw), in_channels)


class SpikingResNet(spiking_resnet.SpikingResNet):
    """spikingjelly Spiking-ResNet with free stage widths / blocks, stem and stem pool."""

    def __init__(self, block, blocks, widths, num_classes, *, stem="imagenet", pool="max",
                 spiking_neuron=neuron.IFNode, in_channels=3, **neuron_kw):
        nn.Module.__init__(self)
        _init_body(self, block, blocks, widths, num_classes, stem, pool, True,
                   lambda: spiking_neuron(**deepcopy(neuron_kw)),
                   dict(spiking_neuron=spiking_neuron, **neuron_kw), in_channels)


class ANNResNet(torchvision.models.ResNet):
    """torchvision ResNet with free stage widths / blocks, stem and stem pool."""

    def __init__(self, block, blocks, widths, num_classes, *, stem="imagenet", pool="max", in_channels=3):
        nn.Module.__init__(self)
        _init_body(self, block, blocks, widths, num_classes, stem, pool, False,
                   lambda: nn.ReLU(inplace=True), {}, in_channels)


def build(kind: str, arch: str = "resnet18", *, num_classes: int = 10, width: int = 64,
          blocks: Sequence[int] | None = None, pool: str = "max", stem: str = "imagenet",
          T: int | None = None, K: int = 8, encode: bool = False, frames: bool = False,
          in_channels: int = 3) -> nn.Module:
    """Build one of the paper's nets.

    kind: "sew" (SEW-ResNet, ADD, IF + ATan, detach_reset) | "spiking" (Spiking-ResNet, IF + ATan) |
    "ann" (torchvision ResNet). arch: resnet18 / resnet34 / resnet50 (block type + default blocks).
    width: base channels (stages width·1,2,4,8); blocks: 4 blocks-per-stage counts (default: arch's).
    pool: stem pool "max" (authors' default) | "avg" (their AvgPool variant) | "none".
    stem: "imagenet" (authors', default) | "cifar" (3×3 stride-1 conv; the pool is kept unless pool="none").

    Returns the bare net (spiking ones in multi-step mode: [T, B, 3, H, W] → [T, B, classes]) when T is None
    and encode is False; with T given, a ``SpikingClassifier`` (spikes in, mean logits out), and with
    encode=True an ``EncodedClassifier`` (images in [0, 1] in; T defaults to the authors' 10). For "ann",
    T / K / encode are ignored and the net takes images directly.
    frames=True (event data, e.g. CIFAR10-DVS frames, with in_channels=2 polarities): inputs are already spikes over
    time, batch first [B, T, C, H, W]: a ``FramesClassifier`` for SNNs (no encoder), a ``MeanFrameClassifier`` (the
    ANN sees the mean frame) for "ann".
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, not {arch!r}")
    block_kind, default_blocks = ARCHS[arch]
    blocks = tuple(default_blocks if blocks is None else blocks)
    if len(blocks) != 4:
        raise ValueError("blocks must give 4 stages")
    widths = tuple(width * m for m in (1, 2, 4, 8))
    block = _BLOCKS.get(kind, {}).get(block_kind)
    if frames and encode:
        raise ValueError("frames=True (event data, already spikes) and encode=True exclude each other")
    if kind == "ann":
        ann = ANNResNet(block, blocks, widths, num_classes, stem=stem, pool=pool, in_channels=in_channels)
        return MeanFrameClassifier(ann) if frames else ann
    if kind == "sew":
        sn, kw = neuron_settings("sew")
        net = SEWResNet(block, blocks, widths, num_classes, stem=stem, pool=pool, cnf="ADD",
                        spiking_neuron=sn, in_channels=in_channels, **kw)
    elif kind == "spiking":
        sn, kw = neuron_settings("spiking")
        net = SpikingResNet(block, blocks, widths, num_classes, stem=stem, pool=pool, spiking_neuron=sn,
                            in_channels=in_channels, **kw)
    else:
        raise ValueError(f"kind must be 'sew', 'spiking' or 'ann', not {kind!r}")
    functional.set_step_mode(net, "m")
    if frames:
        return FramesClassifier(net, 10 if T is None else T)
    if encode:
        return EncodedClassifier(net, 10 if T is None else T, K)
    if T is not None:
        return SpikingClassifier(net, T)
    return net


def stem_pool(net: nn.Module) -> nn.Module:
    """The stem pooling module of a net from ``build`` (bare or wrapped)."""
    return getattr(net, "net", net).maxpool


# --------------------------------------------------------------------------------------------- wrappers
class SpikingClassifier(nn.Module):
    """spikes [T, B, C, H, W] → mean over T of the multi-step net's per-step logits, [B, classes].

    Neuron states are reset (``functional.reset_net``) at the start of every forward, so each call is an
    independent T-step simulation. The net is put in multi-step mode.
    """

    def __init__(self, net: nn.Module, T: int):
        super().__init__()
        self.net = net
        self.T = int(T)
        functional.set_step_mode(self.net, "m")

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        if spikes.shape[0] != self.T:
            raise ValueError(f"expected {self.T} time steps, got {spikes.shape[0]}")
        functional.reset_net(self.net)
        return self.net(spikes).mean(0)


class EncodedClassifier(SpikingClassifier):
    """images [B, C, H, W] in [0, 1] (or uint8) → phase_encode (K phases, T steps, detached) → SpikingClassifier.

    As in the authors' code the encoding is detached, so input gradients are zero (the phase code has no
    useful gradient); gradient attacks on this wrapper need a straight-through/BPDA treatment elsewhere.
    """

    def __init__(self, net: nn.Module, T: int = 10, K: int = 8):
        super().__init__(net, T)
        self.K = int(K)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        return super().forward(phase_encode(images, self.K, self.T).to(dtype))


class FramesClassifier(SpikingClassifier):
    """event frames [B, T, C, H, W] (batch first, as datasets store them; already spikes) → SpikingClassifier on
    [T, B, C, H, W]. No encoder: the attacked input is the frames themselves."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return super().forward(frames.transpose(0, 1))


class MeanFrameClassifier(nn.Module):
    """The ANN twin on event data: frames [B, T, C, H, W] → the ANN on their mean over T, [B, C, H, W]."""

    def __init__(self, ann: nn.Module):
        super().__init__()
        self.ann = ann

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.ann(frames.mean(1))


class _PhaseSTE(torch.autograd.Function):
    """phase_encode forward; straight-through backward: d spikes_t / d x := 1 for every step t (BPDA)."""

    @staticmethod
    def forward(ctx, x, K: int, T: int):
        return phase_encode(x, K, T)

    @staticmethod
    def backward(ctx, g):
        return g.sum(0), None, None


class BPDAClassifier(EncodedClassifier):
    """``EncodedClassifier`` with a gradient: the forward pass is the exact phase code (same outputs), the
    backward pass treats every spike plane as the identity of the image (Athalye et al. 2018's BPDA with
    g(x) = x), so d loss / d x = Σ_t d loss / d spikes_t. For attacks on the raw image through the encoder."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        spikes = _PhaseSTE.apply(images.to(dtype), self.K, self.T)
        return SpikingClassifier.forward(self, spikes)


SURROGATES = {"atan": surrogate.ATan, "sigmoid": surrogate.Sigmoid, "piecewise_quadratic": surrogate.PiecewiseQuadratic,
              "erf": surrogate.Erf}
same_names(SURROGATES, SEW_SURROGATES, "lib.core.sew.SURROGATES")


def swap_surrogate(model: nn.Module, name: str, alpha: float) -> nn.Module:
    """A deep copy of ``model`` whose spiking neurons use spikingjelly's ``SURROGATES[name](alpha=alpha)`` in the
    backward pass. The forward pass (Heaviside spikes) and the weights are unchanged: only the attack's gradient
    changes (a surrogate-swap check for gradient masking)."""
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, not {name!r}")
    out = deepcopy(model)
    n = 0
    for m in out.modules():
        if isinstance(m, neuron.BaseNode):
            m.surrogate_function = SURROGATES[name](alpha=alpha)
            n += 1
    if n == 0:
        raise ValueError("swap_surrogate: the model has no spiking neurons")
    return out


# --------------------------------------------------------------------------------------------- training
def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 16,
        lr: float = 1e-3, weight_decay: float = 1e-3, flip: bool = True, seed: int = 3407,
        device: str | torch.device | None = None, desc: str = "", defence=None) -> dict:
    """Train ``model`` in place with the authors' recipe (luutn2002/grad-obf-snn, source/train.py); returns a dict.

    ``model``: an ``EncodedClassifier`` (images in [0, 1] → phase-encoded, detached spikes → mean logits over T)
    or the ANN twin (``build("ann", ...)``); both take images [B, C, H, W]. ``x``: images [N, C, H, W] in [0, 1]
    (not normalised, as the authors) or uint8 0..255 (converted to float /255); ``y``: labels [N].
    Recipe: Adam(lr 1e-3, weight_decay 1e-3 — Adam's L2, not AdamW), batch 16, cross-entropy on the model's
    output (for SNNs the mean of the per-step logits, as the authors), horizontal flip with probability 1/2 as
    the only augmentation, no LR schedule, seed 3407.
    Determinism: one CPU ``torch.Generator`` seeded with ``seed`` draws, per epoch, a permutation of the N
    examples and then, per batch, the flip mask (so order and flips are the same on every device).
    Initialisation is the CALLER's job: ``torch.manual_seed(seed)`` before ``build(...)`` (the authors seed
    everything with 3407). An epoch is ceil(N / batch_size) batches, the last one partial (DataLoader's
    default); a trailing batch of a single example is skipped (BatchNorm cannot train on one sample at the
    1×1 spatial size the ImageNet stem gives on 32×32 inputs).
    ``defence``: None, or an adversarial-training recipe (lib.attacks.rat.RAT): each batch's loss is then taken on
    ``defence.adversarial_logits(model, xb, yb, seed)`` (adversarial inputs only, as SNN-RAT; ``seed``, the random
    start's, is one draw of the same generator per batch, after its flips) and ``defence.after_step(model)`` follows
    every optimizer step (the Parseval retraction). Without it the draws, and so the nets, are as before.
    Runs on ``device`` (None: CUDA if available, else CPU); model is moved there and left in train() mode.
    Returns {"state_dict": CPU copy, "seconds": wall time, "curve": [{"epoch", "loss" (example-weighted mean
    cross-entropy), "train_acc" (running accuracy over the epoch's batches)}]}.
    """
    import time

    import torch.nn.functional as F
    from .progress import tqdm

    if epochs < 0:
        raise ValueError("epochs must be >= 0")
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    x = x.float() / 255 if not x.dtype.is_floating_point else x
    x, y = x.to(dev), y.to(dev).long()
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    n = x.shape[0]
    curve = []
    bar = tqdm(range(epochs), desc=desc, leave=False, mininterval=1.0)
    for epoch in bar:
        bar.set_description(f"{desc} epoch {epoch + 1}/{epochs}".strip(), refresh=False)
        perm = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for a in range(0, n, batch_size):
            idx = perm[a:a + batch_size]
            if flip:
                mask = torch.rand(len(idx), generator=gen) < 0.5
            if len(idx) < 2:
                continue
            idx = idx.to(dev)
            xb, yb = x[idx], y[idx]
            if flip:
                xb = torch.where(mask.to(dev).view(-1, *[1] * (xb.dim() - 1)), xb.flip(-1), xb)
            if defence is None:
                out = model(xb)
            else:
                out = defence.adversarial_logits(model, xb, yb, int(torch.randint(2 ** 31, (1,), generator=gen)))
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if defence is not None:
                defence.after_step(model)
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(-1) == yb).sum()
            seen += len(idx)
        seen = max(seen, 1)
        curve.append({"epoch": epoch + 1, "loss": float(loss_sum) / seen, "train_acc": float(correct) / seen})
        bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}", acc=f"{curve[-1]['train_acc']:.3f}", refresh=False)
    functional.reset_net(model)
    state = {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}
    return {"state_dict": state, "seconds": time.perf_counter() - t0, "curve": curve}
