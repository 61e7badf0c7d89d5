"""Table I networks: shapes, and the multi-step SNN equals the snntorch step loop (outputs and gradients)."""
import pytest
import torch

from lib.core.models import Net, SNNConfig, snntorch_step_loop


@pytest.mark.parametrize("arch,shape", [("convnet", (1, 12, 12)), ("fcnet", (6,))])
@pytest.mark.parametrize("surrogate,kwargs", [("fast_sigmoid", {"slope": 25}), ("atan", {"alpha": 2.0}),
                                              ("spike_rate_escape", {"beta": 1, "slope": 25})])
@pytest.mark.parametrize("act_bits", [None, 4])
def test_snn_equals_snntorch_step_loop(arch, shape, surrogate, kwargs, act_bits):
    torch.manual_seed(1)
    cfg = SNNConfig(steps=6, surrogate=surrogate, surrogate_kwargs=kwargs)
    # float32: snntorch's spikes and state_quant are float32 whatever the input dtype (the single
    # layer is checked in float64 in test_neurons.py)
    dtype = torch.float32
    net = Net(arch, "snn", shape, 3, hidden=40, channels=(4, 8), snn=cfg, act_bits=act_bits).to(dtype)
    with torch.no_grad():  # larger weights so that every layer spikes
        for p in net.parameters():
            p.mul_(3.0)
    x = torch.rand(5, *shape, dtype=dtype)
    ours = net.trace(x)
    ref = snntorch_step_loop(net, x)
    tol = 1e-5
    torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=tol, atol=tol)
    weights = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * weights).sum(), list(net.parameters()))
    g_ref = torch.autograd.grad((ref * weights).sum(), list(net.parameters()))
    assert any(g.abs().sum() > 0 for g in g_ours)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=tol * 100, atol=tol * 100)


def test_table_one_shapes():
    ann = Net("convnet", "ann", (3, 32, 32), 10)
    assert [tuple(p.shape) for p in ann.parameters()][::2] == [(32, 3, 3, 3), (64, 32, 3, 3), (1000, 4096), (10, 1000)]
    assert ann(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    snn = Net("fcnet", "snn", (4,), 3, snn=SNNConfig(steps=7))
    assert snn.trace(torch.rand(2, 4)).shape == (7, 2, 3)
    assert snn(torch.rand(2, 4)).shape == (2, 3)


def test_rate_encoding_is_seeded():
    net = Net("fcnet", "snn", (4,), 3, snn=SNNConfig(steps=5, encoding="rate"))
    x = torch.rand(3, 4)
    a = net(x, torch.Generator().manual_seed(0))
    b = net(x, torch.Generator().manual_seed(0))
    c = net(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bad", [dict(kind="cnn"), dict(arch="resnet")])
def test_bad_model_names(bad):
    kw = dict(arch="fcnet", kind="ann") | bad
    with pytest.raises(ValueError, match="choose one of"):
        Net(kw["arch"], kw["kind"], (4,), 3)


def _lif_membranes(net, x):
    seen = []
    hooks = [lif.register_forward_hook(lambda m, i, o: seen.append(o[1].detach())) for lif in net.lifs]
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    return seen, out


@pytest.mark.parametrize("bits", [2, 4])
def test_output_membrane_quantized_or_not(bits):
    """quant_output=True (default): every LIF layer's membrane, the output's included, takes at most 2^b levels,
    so the output (the attack's features) has at most 2^b values per class. quant_output=False: the hidden LIF
    layer is still quantized, the output membrane is continuous."""
    x = torch.randn(64, 6) * 2
    for quant_output in (True, False):
        torch.manual_seed(0)
        kw = {} if quant_output else {"quant_output": False}
        net = Net("fcnet", "snn", (6,), 3, hidden=50, act_bits=bits, act_threshold=0.75, snn=SNNConfig(steps=6), **kw)
        (hidden, output), out = _lif_membranes(net, x)
        levels = net.lifs[0].state_quant.levels
        assert hidden.unique().numel() <= 2 ** bits and torch.isin(hidden, levels).all()
        if quant_output:
            assert all(out[:, c].unique().numel() <= 2 ** bits for c in range(3))
            assert torch.isin(output, levels).all()
        else:
            assert net.lifs[-1].state_quant is None
            # more distinct values than a quantized output could hold (2^b per class × 3 classes): nearly all distinct
            assert out.unique().numel() > 3 * 2 ** bits and out.unique().numel() >= 0.9 * out.numel()
            assert not torch.isin(out, levels).all()


def test_unquantized_output_equals_snntorch_step_loop():
    torch.manual_seed(2)
    net = Net("fcnet", "snn", (6,), 3, hidden=40, act_bits=4, snn=SNNConfig(steps=6), quant_output=False)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    x = torch.rand(5, 6)
    torch.testing.assert_close(net.trace(x), snntorch_step_loop(net, x), rtol=1e-5, atol=1e-5)


def test_build_wires_quant_output_from_the_unit():
    from types import SimpleNamespace

    from lib.core import config
    from lib.core.train import build
    params = config.load("params.yaml", "smoke")
    data = SimpleNamespace(input_shape=(30,), n_classes=2, intensity_range=(0.0, 1.0))
    u = config.unit(params, "breast_cancer", "snn", "target", 0, act_bits=4, act_threshold=0.5)
    net = build(u, data)
    assert all(lif.state_quant is not None for lif in net.lifs)
    net = build(config.unit(params, "breast_cancer", "snn", "target", 0, act_bits=4, act_threshold=0.5,
                            quant_output=False), data)
    assert net.lifs[0].state_quant is not None and net.lifs[-1].state_quant is None
    assert all(lif.threshold == 0.5 for lif in net.lifs)
    net = build(config.unit(params, "breast_cancer", "snn", "target", 0, threshold=1.5), data)   # FP SNN at θ
    assert all(lif.threshold == 1.5 and lif.state_quant is None for lif in net.lifs)
