"""lib.core.resnet: the authors' CIFAR ResNet, the stacked ensemble (= K separate models) and its training."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from lib.core import resnet as R

TINY = dict(blocks=(1, 1, 1), widths=(4, 8, 8), n_classes=10)


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN affine parameters and running statistics, so that the checks below can fail."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1 + 0.2 * torch.randn(m.num_features, generator=g)
            m.bias.data = 0.2 * torch.randn(m.num_features, generator=g)
            m.running_mean = 0.2 * torch.randn(m.num_features, generator=g)
            m.running_var = 0.5 + torch.rand(m.num_features, generator=g)
            m.num_batches_tracked.fill_(7)
    return model


def _models(k: int, arch: dict = TINY) -> list[R.ResNet]:
    out = []
    for s in range(k):
        torch.manual_seed(100 + s)
        out.append(_randomize_bn(R.ResNet(**arch), s))
    return out


def test_resnet18_is_the_authors_model_and_units_compose_to_forward():
    m = R.ResNet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), n_classes=10)
    assert sum(p.numel() for p in m.parameters()) == 11_173_962  # torchvision resnet18, 3×3 stem, 10 classes
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and m.conv1.bias is None
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.modules())
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv2d))
    assert len(m.units()) == 1 + 8 + 1
    for model in (_randomize_bn(m, 0), _models(1, dict(blocks=(3, 3, 3), widths=(16, 32, 64)))[0]):
        model.eval()
        x = torch.randn(2, 3, 32, 32)
        h = x
        for u in model.units():
            h = u(h)
        torch.testing.assert_close(h, model(x), rtol=0, atol=0)


def test_stack_unstack_round_trip_is_exact():
    models = _models(3)
    back = R.stack(models).unstack()
    for a, b in zip(models, back):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for n in sa:
            assert torch.equal(sa[n], sb[n]), n


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_stacked_forward_equals_separate_forwards(mode):
    models = _models(3)
    st = R.stack(models)
    x = torch.randn(3, 5, 3, 16, 16)  # each model its own batch
    refs = [copy.deepcopy(m) for m in models]
    for m in refs:
        m.train(mode == "train")
    st.train(mode == "train")
    out = st(x)
    assert out.shape == (3, 5, 10)
    torch.testing.assert_close(out, torch.stack([m(x[k]) for k, m in enumerate(refs)]), rtol=1e-5, atol=1e-5)
    for a, b in zip(refs, st.unstack()):  # train mode: running statistics updated per model
        for n, t in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[n], t, rtol=1e-5, atol=1e-6)


def _data(n=64, size=16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def _members():
    rng = np.random.default_rng(0)
    perm = rng.permutation(64)
    return [np.sort(perm[:30]), np.sort(perm[30:64]), np.sort(rng.choice(64, 33, replace=False))]


def test_stacked_training_equals_one_by_one_and_seeds_matter():
    x, y = _data()
    kw = dict(epochs=2, batch_size=16, lr=0.05, device="cpu")
    alone = R.train(TINY, x, y, _members(), [1, 2, 3], stack=1, **kw)
    stacked = R.train(TINY, x, y, _members(), [1, 2, 3], stack=3, **kw)
    # 2 epochs × ceil(mean(30, 34, 33) / 16) = 2 × 3 SGD steps. Grouped and plain convs sum in different
    # orders (float32 reassociation; observed max difference 1.2e-7 after the 6 steps on CPU). 1e-4 leaves
    # room for other BLAS/oneDNN/cuDNN kernels, while a wrong batch, augmentation, gradient or lr moves weights
    # by ≥ 1e-2 (swapping two models' member sets: 7e-2).
    for a, b in zip(alone, stacked):
        assert a["steps_per_epoch"] == 3 and len(a["curve"]) == 2
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for n, t in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][n], t, rtol=1e-4, atol=1e-4, msg=n)
        init = R._init(TINY, a["seed"]).state_dict()
        assert not torch.allclose(init["conv1.weight"], a["state_dict"]["conv1.weight"])  # it trained
        assert int(a["state_dict"]["bn1.num_batches_tracked"]) == 6
    w = [r["state_dict"]["fc.weight"] for r in alone]
    assert not torch.allclose(w[0], w[1], atol=1e-2)
    again = R.train(TINY, x, y, _members(), [1, 2, 3], stack=1, **kw)[0]  # epoch length: mean of all sets
    for n, t in alone[0]["state_dict"].items():
        assert torch.equal(again["state_dict"][n], t), n  # deterministic


@pytest.mark.parametrize("stack", [1, 3])
def test_each_model_sees_only_its_members_in_full_batches(monkeypatch, stack):
    x = torch.arange(64.0).view(64, 1, 1, 1).expand(64, 3, 8, 8).contiguous()  # pixel value = example index
    y = torch.zeros(64, dtype=torch.long)
    members, seeds = _members(), [1, 2, 3]
    seen: dict[int, list[torch.Tensor]] = {}
    real = R.D.augment

    def spy(xb, generator):
        seen.setdefault(generator.initial_seed(), []).append(xb[:, 0, 0, 0].long())
        return real(xb, generator)

    monkeypatch.setattr(R.D, "augment", spy)
    R.train(dict(TINY, widths=(2, 2, 2)), x, y, members, seeds, epochs=2, batch_size=16, stack=stack, device="cpu")
    for mem, s in zip(members, seeds):
        batches = seen[R.data_seed(s)]
        assert len(batches) == 6 and all(len(b) == 16 for b in batches)
        drawn = torch.cat(batches).numpy()
        assert set(drawn) <= set(mem.tolist())
        assert set(drawn[:len(mem)]) == set(mem.tolist())  # the first len(mem) draws are one permutation
    assert not set(torch.cat(seen[R.data_seed(1)]).tolist()) & set(torch.cat(seen[R.data_seed(2)]).tolist())


def test_logits_stacked_equals_per_model():
    models = _models(3)
    states = [m.state_dict() for m in models]
    x = torch.randn(10, 3, 16, 16)
    queries = ("none", "flip", 7)
    out = R.logits(states, TINY, x, queries=queries, stack=3, batch_size=4, device="cpu")
    assert out.shape == (3, 10, 3, 10) and out.dtype == np.float32
    one = R.logits(states, TINY, x, queries=queries, stack=1, batch_size=6, device="cpu")
    np.testing.assert_allclose(out, one, rtol=1e-5, atol=1e-5)
    m = models[1].eval()
    single = R.logits(m, None, x, queries=queries, batch_size=10, device="cpu")
    assert single.shape == (1, 10, 3, 10)
    np.testing.assert_allclose(single[0], out[1], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(out[1, :, 0], m(x).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[1, :, 1], m(x.flip(-1)).numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out[:, :, 2], out[:, :, 0])  # the seeded augmentation changed the input
