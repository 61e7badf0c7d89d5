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
