"""Tests for lib/core/gptq.py (paper C's "gptq" method of lib.core.ptq.quantize_model, brevitas' gptq_mode): the
stored weights lie on our grid (channel_grid's scale and zero point, every bit width, BN folded or not), GPTQ beats
round to nearest on trained layers and comes close to our exact OBQ, it equals a plain reference GPTQ (the paper's
algorithm, float64, no lazy blocks), and it is deterministic and leaves a plain model behind."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.core import ptq
from lib.core.gptq import BREVITAS_INT
from lib.core.obc import _im2col
from lib.core.ptq_grid import _dequant


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest: tiny ops, one torch thread


class Net(nn.Module):
    """Stem conv + BN, a conv + BN with a residual 1×1 conv, global pool, fc: every layer kind of our ResNets."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 12, 3, 2, 1, bias=False), nn.BatchNorm2d(12)
        self.short = nn.Conv2d(8, 12, 1, 2, bias=True)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)) + self.short(x))
        return self.fc(x.mean((2, 3)))


def _images(n: int, seed: int) -> torch.Tensor:
    """Smooth random images (neighbouring pixels correlated, as in natural images: H far from diagonal)."""
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(n, 3, 12, 12, generator=g), 3, 1, 1) * 3


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = Net()
    with torch.no_grad():                            # non-trivial BN, one γ < 0 (its folded grid is mirrored)
        for bn in (m.bn1, m.bn2):
            bn.weight.uniform_(0.5, 2.0)
            bn.weight[0] = -0.7
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 3.0)
    return m.eval()


def _fold(model: nn.Module, name: str) -> torch.Tensor:
    bn = {"conv1": model.bn1, "conv2": model.bn2}.get(name)
    w = dict(model.named_modules())[name].weight
    if bn is None:
        return torch.ones(len(w)).reshape((-1,) + (1,) * (w.dim() - 1))
    return (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().reshape((-1,) + (1,) * (w.dim() - 1))


@pytest.mark.parametrize("bits", [4, 2, 1.58, 8])
@pytest.mark.parametrize("scale_method,fold_bn", [("minmax", False), ("mse", False), ("mse", True)])
def test_weights_on_our_grid(net, bits, scale_method, fold_bn):
    x = _images(96, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    q, rep = ptq.quantize_model(net, "gptq", bits, x, device="cpu", scale_method=scale_method, fold_bn=fold_bn)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())      # the input is untouched
    assert type(q) is Net and q.state_dict().keys() == net.state_dict().keys()
    assert not any(type(m).__module__.startswith("brevitas") for m in q.modules())
    assert rep["gptq_failed"] == [] and rep["damp"] == 0.01
    mods, levels = dict(q.named_modules()), ptq.n_levels(bits)
    moved = 0
    for name in ("conv1", "conv2", "short", "fc"):
        f = _fold(net, name) if fold_bn else 1.0
        w = dict(net.named_modules())[name].weight.detach() * f
        w_hat = mods[name].weight.detach() * f                     # what was put on the grid
        grid = ptq.channel_grid(w, bits, scale_method)            # the grid of the original (folded) weight
        k = w_hat / grid.scale + grid.zero_point
        assert torch.allclose(k, k.round(), atol=1e-3), name     # integer levels …
        assert bool((k.round() >= 0).all() and (k.round() <= levels - 1).all()), name   # … within {0, …, L−1}
        assert torch.allclose(ptq.quantize_tensor(w_hat, bits, grid=grid).w_hat, w_hat, atol=1e-5, rtol=1e-5)
        moved += int((w_hat - ptq.quantize_tensor(w, bits, grid=grid).w_hat).abs().gt(1e-6).sum())
    assert moved > 0                                               # GPTQ is not round to nearest
    assert torch.isfinite(q(x)).all()


def test_158_bits_is_brevitas_narrow_unsigned_2_bits():
    # every width of LEVELS is an exact brevitas unsigned grid: 2^b − narrow levels (1.58 → {0, 1, 2})
    assert set(BREVITAS_INT) == set(ptq.LEVELS)
    for bits, (bw, narrow) in BREVITAS_INT.items():
        assert 2 ** bw - narrow == ptq.n_levels(bits)
    assert BREVITAS_INT[1.58] == (2, True)


def test_deterministic_and_last_layer_bits(net):
    x = _images(64, 2)
    a, rep = ptq.quantize_model(net, "gptq", 2, x, device="cpu", last_layer_bits=8, seed=3)
    b, _ = ptq.quantize_model(net, "gptq", 2, x, device="cpu", last_layer_bits=8, seed=3)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert rep["layers"]["fc"]["levels"] == 256 and rep["layers"]["conv2"]["levels"] == 4


def test_singular_hessian_is_reported_and_left_at_rtn():
    # 3 inputs for 16 weights, no damping: brevitas cannot factorise H, warns and skips the layer
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(16, 4)).eval(), torch.randn(3, 16)
    with pytest.warns(UserWarning, match="GPTQ will not be applied"):
        q, rep = ptq.quantize_model(model, "gptq", 2, x, device="cpu", damp=0.0)
    rtn, _ = ptq.quantize_model(model, "rtn", 2, x, device="cpu")
    assert rep["gptq_failed"] == ["0"] and torch.equal(q[0].weight, rtn[0].weight)


# ------------------------------------------------------------------------------------ trained layers

def _trained(kind: str) -> tuple[nn.Module, torch.Tensor]:
    """A conv or linear layer trained (Adam, 150 steps) to imitate a random teacher on correlated inputs;
    returns it in a Sequential and the calibration inputs."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if kind == "linear":
        x = torch.randn(512, 12, generator=g) @ torch.randn(12, 48, generator=g)     # rank 12 + noise
        x = x + 0.1 * torch.randn(512, 48, generator=g)
        student, teacher = nn.Linear(48, 16), nn.Linear(48, 16)
    else:
        x = _images(128, 0)
        student, teacher = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(3, 16, 3, padding=1)
    with torch.no_grad():
        y = teacher(x)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.mse_loss(student(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return nn.Sequential(student).eval(), x


def _out_err(model: nn.Module, q: nn.Module, x: torch.Tensor) -> float:
    """‖W X − Ŵ X‖² on the calibration inputs (biases cancel: they are not quantized)."""
    with torch.no_grad():
        return float((model(x) - q(x)).square().sum())


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_gptq_beats_rtn_and_is_close_to_obq(kind):
    model, x = _trained(kind)
    for bits in (4, 2, 1.58):
        err = {m: _out_err(model, ptq.quantize_model(model, m, bits, x, device="cpu")[0], x)
               for m in ("rtn", "gptq", "obc")}
        print(kind, bits, {m: f"{e:.4g}" for m, e in err.items()})
        assert err["gptq"] < 0.8 * err["rtn"], (bits, err)
        assert err["gptq"] < 2.0 * err["obc"], (bits, err)


# ------------------------------------------------------------------------------------ parity

def _reference_gptq(w: torch.Tensor, h: torch.Tensor, grid, damp: float, act_order: bool) -> torch.Tensor:
    """GPTQ as in the paper (Algorithm 1 without lazy batches; IST-DASLab/gptq's fasterquant), float64."""
    w, h = w.double().clone(), h.double().clone()
    s, z = grid.scale.double().reshape(-1, 1), grid.zero_point.double().reshape(-1, 1)
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(len(h))
    w, h = w[:, perm], h[perm][:, perm]
    h += damp * torch.diag(h).mean() * torch.eye(len(h), dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros_like(w)
    for j in range(w.shape[1]):
        q[:, j:j + 1] = _dequant(w[:, j:j + 1], s, z, grid.levels)
        err = (w[:, j] - q[:, j]) / u[j, j]
        w[:, j:] -= err[:, None] * u[j, j:][None, :]
    return q[:, torch.argsort(perm)].float()


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("act_order", [False, True])
def test_parity_with_reference_gptq(kind, act_order):
    model, x = _trained(kind)
    x = x.clone()
    if kind == "linear":
        x[:, 5] = 0                                               # a dead input: its weight must become 0
    layer = model[0]
    w = layer.weight.detach().flatten(1)
    cols = x.t() if kind == "linear" else _im2col(x, layer)     # brevitas: unfoldNd; ours: the OBC Hessian's
    for bits in (4, 2, 1.58):
        q, _ = ptq.quantize_model(model, "gptq", bits, x, device="cpu", act_order=act_order, scale_method="mse")
        w_hat = q[0].weight.detach().flatten(1)
        grid = ptq.channel_grid(w, bits, "mse")
        ref = _reference_gptq(w, 2 / cols.shape[1] * cols @ cols.t(), grid, 0.01, act_order)
        same = (w_hat - ref).abs().le(1e-5 * grid.scale).float().mean()
        assert same > 0.99, (bits, float(same))                   # float32 vs float64: a rare tie might flip
        e_b, e_r = ((w - w_hat) @ cols).square().sum(), ((w - ref) @ cols).square().sum()
        assert abs(float(e_b / e_r) - 1) < 0.01
        if kind == "linear":
            assert torch.equal(w_hat[:, 5], torch.zeros(len(w_hat)))
