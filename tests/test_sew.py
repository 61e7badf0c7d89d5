"""lib.core.sew: phase coding, SEW/Spiking/ANN ResNets of paper D and the T-step classifier wrappers."""
import copy

import pytest
import torch
import torchvision
from spikingjelly.activation_based import encoding, functional, layer, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet, spiking_resnet
from torch import nn

from lib.core import sew as S

NARROW = dict(width=8, blocks=[1, 1, 1, 1])


def _sj_phase(v: torch.Tensor, K: int, T: int) -> torch.Tensor:
    """The authors' encoder: WeightedPhaseEncoder(K) on v/256, called T times, stacked."""
    enc = encoding.WeightedPhaseEncoder(K)
    x = v.to(torch.float32) / 256.0
    out = torch.stack([enc(x) for _ in range(T)])
    enc.reset()
    return out


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.3 * torch.randn(n, generator=g)
            m.bias.data = 0.3 + 0.3 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.05 + 0.2 * torch.rand(n, generator=g)
    return model


# ------------------------------------------------------------------------------------------ phase coding
@pytest.mark.parametrize("T", [8, 10, 19])
def test_phase_encode_equals_spikingjelly_on_all_pixel_values(T):
    v = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)          # every pixel value, [B, C, H, W]
    ref = _sj_phase(v, 8, T)
    assert torch.equal(S.phase_encode(v, K=8, T=T), ref)
    assert torch.equal(S.phase_encode(v.float() / 255, K=8, T=T), ref)   # float [0, 1] input, same pixels


def test_phase_encode_smaller_K_agrees_on_supported_values():
    K = 5
    v = torch.arange(0, 256 - 2 ** (8 - K) + 1, 2 ** (8 - K))            # v/256 ≤ 1 − 2^-K, multiples of 2^-K
    assert torch.equal(S.phase_encode(v, K=K, T=7), _sj_phase(v, K, 7))


def test_phase_encode_bits_cycle_shape_binary():
    s = S.phase_encode(torch.tensor([128, 1, 192, 255, 0], dtype=torch.uint8), K=8, T=10)
    assert s.shape == (10, 5)
    assert torch.equal(s[:8, 0], torch.tensor([1., 0, 0, 0, 0, 0, 0, 0]))   # 128: MSB phase only
    assert torch.equal(s[:8, 1], torch.tensor([0., 0, 0, 0, 0, 0, 0, 1]))   # 1: LSB phase only
    assert torch.equal(s[:8, 2], torch.tensor([1., 1, 0, 0, 0, 0, 0, 0]))   # 192
    assert torch.equal(s[:, 3], torch.ones(10)) and torch.equal(s[:, 4], torch.zeros(10))
    assert torch.equal(s[8:], s[:2])                                          # T=10: phases 0, 1 again
    x = torch.rand(3, 3, 6, 5)
    x.requires_grad_(True)
    out = S.phase_encode(x, K=8, T=10)
    assert out.shape == (10, 3, 3, 6, 5) and not out.requires_grad
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    # the spikes are the binary digits of round(255 x) (weights not applied, but they reconstruct v/256)
    w = 2.0 ** -torch.arange(1, 9).view(8, 1, 1, 1, 1)
    assert torch.equal((out[:8] * w).sum(0) * 256, torch.round(x.detach() * 255))


# ------------------------------------------------------------------------------------------ models
def test_sew_neurons_and_connect_function():
    net = S.build("sew", **NARROW)
    sns = [m for m in net.modules() if isinstance(m, neuron.BaseNode)]
    assert sns and all(type(m) is neuron.IFNode for m in sns)
    for m in sns:
        assert m.v_threshold == 1.0 and m.v_reset == 0.0 and m.detach_reset is True
        assert isinstance(m.surrogate_function, surrogate.ATan) and m.surrogate_function.alpha == 2.0
        assert m.step_mode == "m"
    blocks = [m for m in net.modules() if isinstance(m, sew_resnet.BasicBlock)]
    assert len(blocks) == 4 and all(b.cnf == "ADD" for b in blocks)
    # the authors' Spiking-ResNet neuron: IF + ATan, spikingjelly's default detach_reset=False
    sp = [m for m in S.build("spiking", **NARROW).modules() if isinstance(m, neuron.BaseNode)]
    assert all(isinstance(m.surrogate_function, surrogate.ATan) and not m.detach_reset for m in sp)


@pytest.mark.parametrize("kind", ["sew", "spiking", "ann"])
def test_stem_pool_switch(kind):
    mx, av = S.build(kind, pool="max", **NARROW), S.build(kind, pool="avg", **NARROW)
    pools = (nn.MaxPool2d, layer.MaxPool2d)
    assert isinstance(S.stem_pool(mx), pools)
    assert not any(isinstance(m, pools) for m in av.modules())
    p = S.stem_pool(av)
    assert isinstance(p, (nn.AvgPool2d, layer.AvgPool2d)) and (kind == "ann") == (type(p) is nn.AvgPool2d)
    assert (p.kernel_size, p.stride, p.padding) == (3, 2, 1)
    assert not any(isinstance(m, pools) for m in S.build(kind, pool="none", **NARROW).modules())


def test_full_width_matches_library_factories():
    """width 64 / default blocks: same parameter names, shapes and (same seed) values as the library nets."""
    torch.manual_seed(1)
    ours = S.build("sew")
    torch.manual_seed(1)
    ref = sew_resnet.sew_resnet18(cnf="ADD", spiking_neuron=neuron.IFNode, num_classes=10,
                                  surrogate_function=surrogate.ATan(), detach_reset=True)
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(2)
    ours = S.build("spiking", "resnet34", num_classes=100)
    torch.manual_seed(2)
    ref = spiking_resnet.spiking_resnet34(spiking_neuron=neuron.IFNode, num_classes=100,
                                          surrogate_function=surrogate.ATan())
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def _nparams(m):
    return sum(p.numel() for p in m.parameters())


def test_ann_twin_param_count_and_narrow_models():
    ann = S.build("ann")
    assert _nparams(ann) == _nparams(torchvision.models.resnet18(num_classes=10))
    assert _nparams(S.build("ann", "resnet50", num_classes=100)) == \
        _nparams(torchvision.models.resnet50(num_classes=100))
    full, narrow = S.build("sew"), S.build("sew", width=16, blocks=[1, 1, 1, 1])
    assert _nparams(narrow) < _nparams(full) / 10
    for n in (full, narrow):
        assert [hasattr(n, f"layer{i}") for i in range(1, 6)] == [True] * 4 + [False]
    assert [n.conv1.out_channels for n in (narrow.layer1[0], narrow.layer4[0])] == [16, 128]
    assert narrow.fc.in_features == 128
    # sew and ann at the same width/blocks: same parameter count (SEW adds only parameter-free neurons)
    assert _nparams(S.build("ann", width=16, blocks=[1, 1, 1, 1])) == _nparams(narrow)


def test_stems_on_cifar_inputs():
    x = torch.rand(2, 3, 32, 32)
    for stem, side in [("imagenet", 8), ("cifar", 16)]:
        net = S.build("ann", stem=stem, **NARROW).eval()
        feats = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        assert feats.shape[-1] == side
        assert net(x).shape == (2, 10)


# ------------------------------------------------------------------------------------------ wrappers
@pytest.mark.parametrize("kind", ["sew", "spiking"])
def test_spiking_classifier_is_mean_of_stepwise_logits(kind):
    torch.manual_seed(0)
    T = 6
    clf = S.build(kind, T=T, **NARROW)
    _randomize_bn(clf).eval()
    spikes = S.phase_encode(torch.rand(3, 3, 32, 32), K=8, T=T)
    with torch.no_grad():
        out = clf(spikes)
        # step by step in single-step mode on a copy
        net = copy.deepcopy(clf.net)
        functional.set_step_mode(net, "s")
        functional.reset_net(net)
        per_step = torch.stack([net(spikes[t]) for t in range(T)])
        again = clf(spikes)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out, per_step.mean(0), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(per_step[0], per_step[-1])   # dynamics matter: the steps differ
    torch.testing.assert_close(again, out, rtol=0, atol=0)  # state reset between forwards
    # without the reset the second run would differ (membrane potentials carried over)
    with torch.no_grad():
        functional.reset_net(clf.net)
        clf.net(spikes)
        stale = clf.net(spikes).mean(0)
    assert not torch.allclose(stale, out)


def test_encoded_classifier_matches_manual_pipeline():
    torch.manual_seed(0)
    enc = S.build("sew", encode=True, **NARROW)
    assert isinstance(enc, S.EncodedClassifier) and (enc.T, enc.K) == (10, 8)
    _randomize_bn(enc).eval()
    imgs = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        a = enc(imgs.float() / 255)
        b = S.SpikingClassifier(enc.net, 10)(_sj_phase(imgs, 8, 10))
        c = enc(imgs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(c, b, rtol=0, atol=0)


def test_gradients_reach_input_spikes_and_all_parameters():
    net = S.build("sew", T=4, **NARROW)
    spikes = S.phase_encode(torch.rand(2, 3, 32, 32), T=4).requires_grad_(True)
    net(spikes).sum().backward()
    assert spikes.grad is not None and spikes.grad.shape == spikes.shape
    assert all(p.grad is not None for p in net.parameters())


# ------------------------------------------------------------------------------------------ training (fit)
FIT_NARROW = dict(width=4, blocks=[1, 1, 1, 1])


def _fit_model(kind: str, seed: int = 3407, num_classes: int = 10):
    torch.manual_seed(seed)                                   # init is the caller's job
    if kind == "ann":
        return S.build("ann", **FIT_NARROW, num_classes=num_classes)
    return S.build(kind, **FIT_NARROW, num_classes=num_classes, T=2, K=8, encode=True)


def test_fit_same_seed_identical_weights():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    runs = [S.fit(_fit_model("sew"), x, y, epochs=1, device="cpu") for _ in range(2)]
    a, b = (r["state_dict"] for r in runs)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.device.type == "cpu" for v in a.values())
    init = _fit_model("sew").state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a if a[k].is_floating_point())   # it did train
    r = runs[0]
    assert r["seconds"] > 0 and len(r["curve"]) == 1 and set(r["curve"][0]) == {"epoch", "loss", "train_acc"}
    # a different data seed gives different weights
    c = S.fit(_fit_model("sew"), x, y, epochs=1, seed=1, device="cpu")["state_dict"]
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("kind", ["sew", "spiking", "ann"])
def test_fit_loss_decreases_on_brightness_task(kind):
    g = torch.Generator().manual_seed(1)
    y = torch.arange(48) % 2
    x = (0.15 + 0.2 * torch.rand(48, 3, 16, 16, generator=g)) + 0.45 * y.view(-1, 1, 1, 1)   # dark vs bright
    r = S.fit(_fit_model(kind, num_classes=2), x, y, epochs=5, seed=1, device="cpu")
    losses = [c["loss"] for c in r["curve"]]
    assert [c["epoch"] for c in r["curve"]] == [1, 2, 3, 4, 5]
    assert losses[-1] < losses[0] - 0.05
    assert r["curve"][-1]["train_acc"] > r["curve"][0]["train_acc"]
