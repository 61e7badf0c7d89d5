"""The papers' datasets behind the stages at paper scale: the stages' dataset loader (lib.stages.base.Loader) serves
CIFAR-100 / TinyImageNet-200 / CIFAR10-DVS from lib.core.paper_data, 06 and 07 accept the datasets they can run and
name the one they cannot, and stage 07's study trains and attacks a 100-class net on a generated CIFAR-100 (the real
on-disk format, tests/test_paper_data.make_cifar100). Nothing is downloaded."""
import copy

import pytest
import yaml
from conftest import GRAD_OBF_SEC
from test_paper_data import _md5, make_cifar100, make_dvs_extract, no_download  # noqa: F401  (refuses downloads)

from lib.core import config, paper_data as PD
from lib.core.data import DataError
from lib.stages import base, grad_obf as G, ptq_privacy_params as PP


def _loader(raw, mirror=None):
    params = yaml.safe_load(open("params.yaml"))
    params["00_data"] = dict(params["00_data"], raw_dir=str(raw), mirror_env="SNN_PRIVACY_TEST_NO_MIRROR")
    return base.Loader(params)


def test_loader_serves_cifar100_from_raw_dir_and_names_what_is_missing(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    with pytest.raises(DataError, match="cifar-100-python.tar.gz.*cs.toronto.edu"):
        _loader(raw)("cifar100")                    # nothing there: the archive and its URL are named
    make_cifar100(raw, n_train=60, n_test=40)
    folder = raw / "cifar-100-python"
    monkeypatch.setattr(PD, "CIFAR100_FILES", {n: _md5(folder / n) for n in ("train", "test", "meta")})
    t = _loader(raw)("cifar100")
    assert t.name == "cifar100" and t.n_classes == 100 and t.x_train.shape == (60, 3, 32, 32)
    assert t.intensity_range == (-1.0, 1.0)         # the CIFAR-10 convention the stages map back to pixels


def test_stages_accept_the_datasets_they_can_run():
    params = yaml.safe_load(open("params.yaml"))
    paper06 = PP.Params.from_params(params, "paper")
    paper07 = G.Params.from_params(params, "paper")
    quick06, quick07 = PP.Params.from_params(params, "quick"), G.Params.from_params(params, "quick")
    assert paper06.dataset == "cifar100" and paper07.dataset == "cifar100"       # the papers' Table I / Table 1
    assert quick06.dataset == "cifar10" and quick07.dataset == "cifar10"         # quick keeps the mirror's data
    for ds in ("cifar10", "cifar100", "tinyimagenet"):
        p = copy.deepcopy(params)
        p[PP.SECTION]["dataset"] = ds
        assert PP.Params.from_params(p, "paper").dataset == ds
    p = copy.deepcopy(params)
    p[G.SECTION]["dataset"] = "mnist"
    with pytest.raises(config.ConfigError, match="`07_gradient_sparsity.dataset`.*cifar10dvs"):
        G.Params.from_params(p, "paper")


def test_grad_obf_trains_and_attacks_a_100_class_net_on_generated_cifar100(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    make_cifar100(raw, n_train=60, n_test=40)
    folder = raw / "cifar-100-python"
    monkeypatch.setattr(PD, "CIFAR100_FILES", {n: _md5(folder / n) for n in ("train", "test", "meta")})
    sec = copy.deepcopy(GRAD_OBF_SEC)
    sec.update(dataset="cifar100", n_train=60, n_test=40,
               models=[m for m in sec["models"] if m["name"] in ("SEW", "ANN")])
    sec["masking"] = dict(sec["masking"], models=["SEW", "ANN"])
    study = G.Study.open(sec, _loader(raw)("cifar100"), tmp_path / "ckpt", device="cpu")
    models = study.train()
    assert study.data.n_classes == 100 and study.root.name == "cifar100"
    assert [n.model.net.fc.out_features if n.spiking else n.model.fc.out_features
            for n in study.nets.values()] == [100, 100]
    entries = study.paper_entries()
    assert {e["attack"] for e in entries} == {"clean", "FGSM", "PGD"} and len(models) == 2
    assert all(len(e["correct"]) == 16 for e in entries)


def test_grad_obf_runs_cifar10dvs_event_frames_without_an_encoder(tmp_path):
    """CIFAR10-DVS through the stage: binary frames straight into the SNNs (2 input channels, no phase code), the
    ANN on the mean frame, the authors' attacks on the frames, the masking checks without BPDA (nothing to bypass),
    every entry in the one space the frames are, and T must equal the frames."""
    raw = tmp_path / "raw"
    make_dvs_extract(raw / "CIFAR10DVS" / "extract", per_class=20)
    events = PD.load_cifar10dvs(raw, allow_download=False, strict=False, frames=2, size=32)
    sec = copy.deepcopy(GRAD_OBF_SEC)
    sec.update(dataset="cifar10dvs", n_train=40, n_test=16, attacked=8, T=2,
               sweep={"eps_255": [2, 64], "n": 8}, sparsity={"n": 8, "batch_size": 4})
    sec["masking"] = dict(sec["masking"], models=["SEW", "ANN", "SEW RAT"])
    study = G.Study.open(sec, events, tmp_path / "ckpt", device="cpu")
    assert study.data.events and set(study.data.x_train.unique().tolist()) <= {0.0, 1.0}
    assert study.data.x_train.shape[1:] == (2, 2, 32, 32)
    study.train()
    sew, ann = study.nets[("SEW", 5)], study.nets[("ANN", 5)]
    assert sew.model.net.conv1.in_channels == 2 and ann.model.ann.conv1.in_channels == 2
    assert not sew.encoded and sew.encode(study.data.x_test[:3]).shape == (2, 3, 2, 32, 32)
    checks = [spec["check"] for spec in G.masking_attacks(study.sec, sew)]
    assert "attack the image (BPDA)" not in checks and "transfer" in checks and "surrogate swap" in checks
    entries = study.paper_entries() + study.masking_entries()
    assert {e["space"] for e in entries} == {"spikes"}
    assert all(len(e["correct"]) == 8 for e in entries if e["group"] == "paper")
    sp = G.sparsity(study, sew)
    assert (sp.type == "input").any()
    bad = copy.deepcopy(sec)
    bad["T"] = 3
    with pytest.raises(ValueError, match="07_gradient_sparsity.T = 3 .* 2 frames"):
        G.Study.open(bad, events, tmp_path / "ckpt", device="cpu")
