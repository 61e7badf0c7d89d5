"""params.yaml is validated before anything trains; every error names the offending key. The settings of a section
at a scale come from one resolver, config.effective."""
import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from lib.core import config

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, edit):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_are_valid_at_every_scale():
    for scale in config.SCALES:
        params = config.load(ROOT / "params.yaml", scale)
        assert params["scale"] == scale
        for ds in params["00_data"]["datasets"]:
            for name in config.SECTIONS:
                s = config.effective(params, name, ds)
                assert s["steps"] > 0 and s["epochs"] > 0 and s["batch_size"] > 0 and s["seeds"]


@pytest.mark.parametrize("key,edit", [
    ("model.snn.surrogate", lambda p: p["model"]["snn"].__setitem__("surrogate", "sigmoidal")),
    ("00_data.datasets", lambda p: p["00_data"].__setitem__("datasets", ["mnist", "svhn"])),
    ("01_models.datasets", lambda p: p["01_models"].__setitem__("datasets", ["imagenet"])),
    ("scales.quick.steps", lambda p: p["scales"]["quick"].__setitem__("steps", 0)),
    ("scales.smoke.steps", lambda p: p["scales"]["smoke"].__setitem__("steps", -3)),
    ("scale", lambda p: p.__setitem__("scale", "huge")),
    ("model.snn.beta", lambda p: p["model"]["snn"].__setitem__("beta", 1.5)),
    ("00_data.cifar10_source", lambda p: p["00_data"].__setitem__("cifar10_source", "jpeg")),
    ("train.lr.snn", lambda p: p["train"]["lr"].__setitem__("snn", 0)),
    ("scales.quick.image.epochs", lambda p: p["scales"]["quick"]["image"].__setitem__("epochs", 2.5)),
    ("train.curve_eval_size", lambda p: p["train"].__setitem__("curve_eval_size", 0)),
    ("train.eval_batch_size", lambda p: p["train"].__setitem__("eval_batch_size", "big")),
    ("05_temporal_dynamics.by_scale.quick.batch_size.image", lambda p: p["05_temporal_dynamics"]["by_scale"]["quick"]
     .__setitem__("batch_size", {"image": -32, "tabular": None})),
    ("05_temporal_dynamics.by_scale.quick.curve_eval_size", lambda p: p["05_temporal_dynamics"]["by_scale"]["quick"]
     .__setitem__("curve_eval_size", 1.5)),
    ("06_post_training_quantization.by_scale.quick.ptq.bits", lambda p: p["06_post_training_quantization"]["by_scale"]
     ["quick"]["ptq"].__setitem__("bits", [3])),
    ("06_post_training_quantization.ptq.methods", lambda p: p["06_post_training_quantization"]["ptq"]
     .__setitem__("methods", ["awq"])),
    ("06_post_training_quantization.lira.variant", lambda p: p["06_post_training_quantization"]["lira"]
     .__setitem__("variant", "carlini")),
    ("06_post_training_quantization.by_scale.quick.targets", lambda p: p["06_post_training_quantization"]["by_scale"]
     ["quick"].__setitem__("targets", 40)),
    ("06_post_training_quantization.by_scale.quick.shadow_counts", lambda p: p["06_post_training_quantization"]
     ["by_scale"]["quick"].__setitem__("shadow_counts", [2, 17])),
    ("06_post_training_quantization.rmia.offline_a", lambda p: p["06_post_training_quantization"]["rmia"]
     .__setitem__("offline_a", 2)),
    ("06_post_training_quantization.by_scale.quick.colour", lambda p: p["06_post_training_quantization"]["by_scale"]
     ["quick"].__setitem__("colour", 1)),
    ("07_gradient_sparsity.models[0].kind", lambda p: p["07_gradient_sparsity"]["models"][0]
     .__setitem__("kind", "vgg")),
    ("07_gradient_sparsity.by_scale.quick.models", lambda p: p["07_gradient_sparsity"]["by_scale"]["quick"]["models"]
     .append(dict(p["07_gradient_sparsity"]["by_scale"]["quick"]["models"][0]))),       # duplicate name
    ("07_gradient_sparsity.by_scale.quick.masking.models", lambda p: p["07_gradient_sparsity"]["by_scale"]["quick"]
     ["masking"].__setitem__("models", ["SEW-ResNet18"])),                             # not a quick model
    ("07_gradient_sparsity.by_scale.quick.masking.transfer_from", lambda p: p["07_gradient_sparsity"]["by_scale"]
     ["quick"]["masking"].__setitem__("transfer_from", "SEW-ResNet10-w16")),           # not an ANN
    ("07_gradient_sparsity.by_scale.quick.sweep", lambda p: p["07_gradient_sparsity"]["by_scale"]["quick"]["sweep"]
     .__setitem__("n", 5000)),                                                         # more than attacked
    ("07_gradient_sparsity.attack.bn_mode", lambda p: p["07_gradient_sparsity"]["attack"]
     .__setitem__("bn_mode", "frozen")),
    ("07_gradient_sparsity.by_scale.quick.masking.surrogate.name", lambda p: p["07_gradient_sparsity"]["by_scale"]
     ["quick"]["masking"]["surrogate"].__setitem__("name", "triangle")),
    ("07_gradient_sparsity.K", lambda p: p["07_gradient_sparsity"].__setitem__("K", 9)),
    ("99_claims.stages", lambda p: p["99_claims"]["stages"].append("09_future")),
    ("08_attack_ladder.by_scale.quick.settings.ann.encoding", lambda p: p["08_attack_ladder"]["by_scale"]["quick"]
     ["settings"]["ann"].__setitem__("encoding", "rate")),                             # an encoding on an ANN
    ("08_attack_ladder.settings.snn.datasets", lambda p: p["08_attack_ladder"]["settings"]["snn"]
     .__setitem__("datasets", ["svhn"])),
    ("08_attack_ladder.by_scale.quick.models.image", lambda p: p["08_attack_ladder"]["by_scale"]["quick"]
     .__setitem__("models", {"image": 3, "tabular": 10})),                             # < 4: no IN and OUT reference
    ("08_attack_ladder.by_scale.quick.as_published.settings", lambda p: p["08_attack_ladder"]["by_scale"]["quick"]
     ["as_published"].__setitem__("settings", ["ann", "snn_w4"])),                     # not a setting id
    ("08_attack_ladder.by_scale.quick.as_published.datasets", lambda p: p["08_attack_ladder"]["by_scale"]["quick"]
     ["as_published"].__setitem__("datasets", ["fmnist"])),                            # the setting does not train it
    ("08_attack_ladder.lira.fix_variance", lambda p: p["08_attack_ladder"]["lira"].__setitem__("fix_variance", "yes")),
    ("08_attack_ladder.by_scale.quick.settings.ann.datasets", lambda p: (
        p["00_data"].__setitem__("datasets", ["mnist", "iris"]))),                     # 00_data does not prepare them
])
def test_invalid_value_names_its_key(tmp_path, key, edit):
    """Every error names the full key, also inside the nested blocks of 06-08 (`...ptq.iters.adaround`)."""
    path = _write(tmp_path, edit)
    with pytest.raises(config.ConfigError, match=re.escape(f"`{key}`")):
        config.load(path)


@pytest.mark.parametrize("key,value,edit", [
    ("06_post_training_quantization.ptq.iters.adaround", -1, lambda p: p["06_post_training_quantization"]["ptq"]
     ["iters"].__setitem__("adaround", -1)),
    ("06_post_training_quantization.ptq.bits", [8, 0], lambda p: p["06_post_training_quantization"]["ptq"]
     .__setitem__("bits", [8, 0])),
    ("06_post_training_quantization.training.lr_schedule", None, lambda p: p["06_post_training_quantization"]
     ["training"].__setitem__("lr_schedule", "cosine")),
    ("06_post_training_quantization.arch.widths", [16, 32], lambda p: p["06_post_training_quantization"]["arch"]
     .__setitem__("widths", [16, 32])),                                                # 4 stages, 2 widths
    ("07_gradient_sparsity.masking.square.queries", 0, lambda p: p["07_gradient_sparsity"]["masking"]["square"]
     .__setitem__("queries", 0)),
    ("07_gradient_sparsity.training.lr", -1, lambda p: p["07_gradient_sparsity"]["training"].__setitem__("lr", -1)),
    ("08_attack_ladder.rmia.gamma", 0, lambda p: p["08_attack_ladder"]["rmia"].__setitem__("gamma", 0)),
    ("08_attack_ladder.settings.snn.zz", None, lambda p: p["08_attack_ladder"]["settings"]["snn"].__setitem__("zz", 1)),
])
def test_nested_block_errors_name_the_full_key_and_the_value_alone(tmp_path, key, value, edit):
    with pytest.raises(config.ConfigError) as err:
        config.load(_write(tmp_path, edit))
    msg = str(err.value)
    assert f"`{key}`" in msg and len(msg) < 400, msg          # not the whole block
    if value is not None:
        assert f"`{key}` = {value!r} is invalid" in msg, msg


def test_missing_key_is_named(tmp_path):
    path = _write(tmp_path, lambda p: p["model"]["snn"].pop("threshold"))
    with pytest.raises(config.ConfigError, match="model.snn.threshold"):
        config.load(path)


def test_unit_overrides_are_checked():
    params = config.load(ROOT / "params.yaml", "smoke")
    u = config.unit(params, "iris", "snn", "target", 0, surrogate="atan")
    assert u["surrogate_kwargs"] == {"alpha": 2.0}       # the paper's constant comes along
    assert u["steps"] == params["scales"]["smoke"]["steps"]
    with pytest.raises(config.ConfigError, match="surrogate"):
        config.unit(params, "iris", "snn", "target", 0, surrogate="nope")
    with pytest.raises(config.ConfigError, match="bitz"):
        config.unit(params, "iris", "ann", "target", 0, bitz=3)


def test_shadow_unit_depends_on_split_mode_target_does_not():
    params = config.load(ROOT / "params.yaml", "smoke")
    t1, s1 = (config.unit(params, "mnist", "ann", r, 0) for r in ("target", "shadow"))
    params["00_data"]["split_mode"] = "as_published"
    t2, s2 = (config.unit(params, "mnist", "ann", r, 0) for r in ("target", "shadow"))
    assert t1 == t2 and s1 != s2



# ----------------------------------------------------------------------------- one resolver: config.effective

GOLDEN = json.loads((Path(__file__).parent / "effective_settings_golden.json").read_text())
_RESOLVED = ("members", "epochs", "seeds", "batch_size", "curve_eval_size")


def _with_golden_inputs(params: dict) -> dict:
    """params with the inputs the golden values were computed from (scales, train sizes and seed, every section's
    per-family keys and curve_eval_size, also under by_scale): other edits of params.yaml do not move them."""
    p, inp = copy.deepcopy(params), GOLDEN["inputs"]
    p["scales"] = copy.deepcopy(inp["scales"])
    p["train"].update(copy.deepcopy(inp["train"]))
    for name, own in inp["sections"].items():
        sec = p[name]
        for k in _RESOLVED:
            sec.pop(k, None)
            for over in (sec.get("by_scale") or {}).values():
                (over or {}).pop(k, None)
        sec.update({k: copy.deepcopy(v) for k, v in own.items() if k != "by_scale"})
        for sc, over in own["by_scale"].items():
            sec.setdefault("by_scale", {}).setdefault(sc, {})
            sec["by_scale"][sc] = {**(sec["by_scale"][sc] or {}), **copy.deepcopy(over)}
    return p


def test_effective_gives_the_numbers_of_the_code_before_it():
    """Golden values computed by the four resolvers the pipeline had before config.effective (config.scale_settings
    + config.seeds for 01, membership.section_overrides for 02-04, temporal.settings for 05, store_for's
    curve_eval_size), for every section and dataset at every scale."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, want in GOLDEN["expected"].items():
        scale, name, ds = key.split("/")
        p = _with_golden_inputs({**raw, "scale": scale})
        for section in (name, config.section(p, name), p[name]):   # a name, the resolved section, the raw one
            assert config.effective(p, section, ds) == want, key
    assert len(GOLDEN["expected"]) == len(config.SCALES) * len(config.SECTIONS) * 5


def test_by_scale_wins_over_section_which_wins_over_scale():
    p = config.load(ROOT / "params.yaml", "quick")
    for name in ("02_activation_quantization", "05_temporal_dynamics"):
        sec = p[name]
        for k in _RESOLVED:
            sec.pop(k, None)
            (sec["by_scale"]["quick"] or {}).pop(k, None)
        base = config.effective(p, name, "mnist")
        assert (base["n_in"], base["epochs"], base["batch_size"], base["seeds"], base["curve_eval_size"]) == (
            p["scales"]["quick"]["image"]["n_in"], p["scales"]["quick"]["image"]["epochs"],
            p["train"]["batch_size"]["image"], [0, 1], p["train"]["curve_eval_size"]) and not base["reduced"]
        sec.update(members={"image": [300, 200], "tabular": None}, epochs={"image": 3, "tabular": None},
                   seeds={"image": 4}, batch_size={"image": 64, "tabular": None}, curve_eval_size=50)
        mid = config.effective(config.validate(p), name, "mnist")
        assert (mid["n_in"], mid["n_out"], mid["epochs"], mid["seeds"], mid["batch_size"], mid["curve_eval_size"],
                mid["reduced"]) == (300, 200, 3, [0, 1, 2, 3], 64, 50, True)
        assert config.effective(p, name, "iris")["epochs"] == p["scales"]["quick"]["tabular"]["epochs"]  # null
        sec["by_scale"]["quick"] = {**(sec["by_scale"]["quick"] or {}), "members": {"image": [100, 100]},
                                    "epochs": {"image": 2}, "seeds": {"image": 1}, "batch_size": {"image": 16},
                                    "curve_eval_size": 10}
        top = config.effective(config.validate(p), name, "mnist")
        assert (top["n_in"], top["n_out"], top["epochs"], top["seeds"], top["batch_size"], top["curve_eval_size"]) == (
            100, 100, 2, [0], 16, 10)
        p["scale"] = "paper"   # another scale's replacement does not apply
        assert config.effective(p, name, "mnist")["epochs"] == 3
        p["scale"] = "quick"


@pytest.mark.parametrize("name", ["02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
                                  "05_temporal_dynamics"])
@pytest.mark.parametrize("where,fam_key,value", [
    ("", "members.image", [400, 1]),
    ("", "epochs.tabular", 0),
    ("by_scale.quick.", "members.image", [400]),
    ("by_scale.quick.", "seeds.image", 2.5),
    ("by_scale.smoke.", "batch_size.tabular", -16),
    ("by_scale.paper.", "epochs.image", "many"),
    ("", "seeds.video", 3),
])
def test_invalid_per_family_value_names_its_full_key(tmp_path, name, where, fam_key, value):
    key, fam = fam_key.split(".")

    def edit(p):
        node = p[name]
        for part in where.split(".")[:-1]:
            node = node.setdefault(part, {}) or {}
            if part in config.SCALES:
                p[name]["by_scale"][part] = node
        node[key] = {**(node.get(key) or {}), fam: value}
    with pytest.raises(config.ConfigError, match=f"`{name}.{where}{fam_key}`"):
        config.load(_write(tmp_path, edit))


@pytest.mark.parametrize("key,edit", [
    ("01_models.epochs", lambda p: p["01_models"].__setitem__("epochs", {"image": 2})),   # 01 = the scale's recipe
    ("03_weight_quantization.by_scale.quick.workers", lambda p: p["03_weight_quantization"]["by_scale"]["quick"]
     .__setitem__("workers", 4)),
    ("02_activation_quantization.workers", lambda p: p["02_activation_quantization"].__setitem__("workers", 2)),
    ("04_surrogate_gradients.by_scale.huge", lambda p: p["04_surrogate_gradients"]["by_scale"].__setitem__("huge", {})),
    ("02_activation_quantization.members.image", lambda p: p["02_activation_quantization"].__setitem__(
        "members", {"image": [5000, 100]})),   # more members than the quick scale's pools
    ("05_temporal_dynamics.by_scale.quick.members.image", lambda p: p["05_temporal_dynamics"]["by_scale"]["quick"]
     .__setitem__("members", {"image": [400, 4000]})),
    ("02_activation_quantization.curve_eval_size", lambda p: p["02_activation_quantization"].__setitem__(
        "curve_eval_size", 0)),
    ("01_models.kinds", lambda p: p["01_models"].__setitem__("kinds", ["cnn"])),
])
def test_section_keys_are_checked_alike(tmp_path, key, edit):
    with pytest.raises(config.ConfigError, match=f"`{key}`"):
        config.load(_write(tmp_path, lambda p: (p.__setitem__("scale", "quick"), edit(p))))


def test_loading_params_imports_no_model_library():
    """Validation reads names from lib.core.vocab, the encoders' constants from lib.core.encoder_constants, and each
    stage's schema from its `<stage>_params` module: loading params.yaml (every section, every scale's replacements)
    imports none of torch, torchvision, sklearn, pandas, scipy, brevitas, snntorch, spikingjelly — what keeps
    `make repro`'s check under 2 s and lets it run before DVC touches anything."""
    import subprocess
    import sys
    heavy = ("torch", "torchvision", "sklearn", "pandas", "scipy", "brevitas", "snntorch", "spikingjelly")
    code = (f"import sys, lib.core.config as c; c.load('params.yaml'); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_each_name_is_written_once_in_the_vocabulary():
    """The modules that implement the names use the vocabulary's tuples, or are keyed by exactly its names."""
    from lib.core import data, encoders, models, neurons, ptq, sew, vocab
    assert config.KINDS is vocab.KINDS is models.KINDS and config.READOUTS is models.READOUTS
    assert config.DATASETS is vocab.DATASETS is data.DATASETS and data.IMAGE_DATASETS is vocab.IMAGE_DATASETS
    assert config.SPLIT_MODES is data.SPLIT_MODES and config.CIFAR10_SOURCES is data.CIFAR10_SOURCES
    assert config.ENCODINGS is vocab.ENCODINGS and set(encoders.ENCODERS) == set(vocab.ENCODINGS)
    assert set(neurons.SURROGATES) == set(vocab.SURROGATES) == set(config.SURROGATES)
    assert set(sew.ARCHS) == set(vocab.SEW_ARCHS) and set(sew.SURROGATES) == set(vocab.SEW_SURROGATES)
    assert set(ptq.LEVELS) == set(vocab.PTQ_BITS) and ptq.METHODS is vocab.PTQ_METHODS
    from lib.attacks import lira
    from lib.core import encoder_constants
    assert set(lira.VARIANTS) == set(vocab.LIRA_VARIANTS)
    assert all(issubclass(encoders.ENCODERS[k], encoder_constants.CONSTANTS[k]) for k in vocab.ENCODINGS)
    with pytest.raises(AssertionError, match="differ"):
        vocab.same_names({"ann": 1}, vocab.KINDS, "x")


# ----------------------------------------------------------------------------- every key known; the command-line check

@pytest.mark.parametrize("key,edit", [
    ("train.lr_schedule", lambda p: p["train"].__setitem__("lr_schedule", "cosine")),
    ("train.lr.cnn", lambda p: p["train"]["lr"].__setitem__("cnn", 0.1)),
    ("model.snn.tau", lambda p: p["model"]["snn"].__setitem__("tau", 2.0)),
    ("model.dropout", lambda p: p["model"].__setitem__("dropout", 0.5)),
    ("scales.quick.image.n_inn", lambda p: p["scales"]["quick"]["image"].__setitem__("n_inn", 10)),
    ("scales.huge", lambda p: p["scales"].__setitem__("huge", {})),
    ("attack.kernel", lambda p: p["attack"].__setitem__("kernel", "rbf")),
    ("verdicts.bootstrap.n", lambda p: p["verdicts"]["bootstrap"].__setitem__("n", 10)),
    ("00_data.rawdir", lambda p: p["00_data"].__setitem__("rawdir", "data/raw")),
    ("09_future", lambda p: p.__setitem__("09_future", {"x": 1})),
])
def test_unknown_key_is_refused_naming_its_path_and_the_allowed_keys(tmp_path, key, edit):
    with pytest.raises(config.ConfigError, match=f"unknown key `{key}`; expected one of ") as err:
        config.load(_write(tmp_path, edit))
    assert repr(key.rsplit(".", 1)[-1]) not in str(err.value).split("expected one of", 1)[1]


def test_negative_weight_decay_is_named_with_its_value(tmp_path):
    with pytest.raises(config.ConfigError, match=r"`train.weight_decay` = -0.01 is invalid"):
        config.load(_write(tmp_path, lambda p: p["train"].__setitem__("weight_decay", -0.01)))


def test_command_line_check_exits_nonzero_naming_the_key(tmp_path):
    """`python -m lib.core.config FILE` (what `make repro` runs before `dvc repro`): 0 on the repository's params.yaml,
    1 with the key named on a typo, and the Makefile runs it before dvc."""
    import subprocess
    import sys
    bad = _write(tmp_path, lambda p: p["06_post_training_quantization"]["ptq"].__setitem__("bits", [8, 0]))
    run = lambda f: subprocess.run([sys.executable, "-m", "lib.core.config", str(f)], cwd=ROOT,   # noqa: E731
                                   capture_output=True, text=True, timeout=300)
    ok, ko = run(ROOT / "params.yaml"), run(bad)
    assert ok.returncode == 0 and "params.yaml: valid" in ok.stdout, ok.stderr[-2000:]
    assert ko.returncode == 1 and "06_post_training_quantization.ptq" in ko.stderr, ko.stderr[-2000:]
    assert "Traceback" not in ko.stderr
    recipe = (ROOT / "Makefile").read_text().split("\nrepro:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("-m lib.core.config") < recipe.index("dvc repro")


# ----------------------------------------------------------------------------- constants of surrogates, encoders; margins

@pytest.mark.parametrize("key,value,edit", [
    ("surrogates.fast_sigmoid.slpoe", 25, lambda p: p["surrogates"]["fast_sigmoid"].update({"slpoe": 25})),
    ("surrogates.triangular.width", 1.0, lambda p: p["surrogates"]["triangular"].update({"width": 1.0})),
    ("surrogates.atan.alpha", -2.0, lambda p: p["surrogates"]["atan"].update({"alpha": -2.0})),
    ("surrogates.fast_sigmoid.slope", "25", lambda p: p["surrogates"]["fast_sigmoid"].update({"slope": "25"})),
    ("verdicts.margins.tpr_at_5pct", 0.02, lambda p: p["verdicts"]["margins"].update({"tpr_at_5pct": 0.02})),
    ("verdicts.margins.test_acc", 0, lambda p: p["verdicts"]["margins"].update({"test_acc": 0})),
    ("verdicts.margins.pool_zero_pct", None, lambda p: p["verdicts"]["margins"].pop("pool_zero_pct")),
])
def test_constants_and_margins_are_known_and_checked(tmp_path, key, value, edit):
    """A surrogate's constants are exactly its spike function's arguments (snntorch's triangular takes `threshold`,
    not `width`), positive numbers; a margin is given for each metric the claims use, and only for those."""
    with pytest.raises(config.ConfigError) as err:
        config.load(_write(tmp_path, edit))
    assert f"`{key}` = {value!r} is invalid" in str(err.value), str(err.value)


def test_encoder_constants_are_checked_without_torch():
    """The constants' checks are the encoders' own (the encoder classes are built on them): a bad or unknown constant
    fails alike through check_constants (the validator's) and build_encoder (the stages')."""
    from lib.core import encoder_constants as EC, encoders as E
    for name, kw in [("poisson_burst", {"tau": 0}), ("delayed_burst", {"p_min": 0.5, "p_max": 0.2}),
                     ("delayed_burst", {"schedule": "cubic"}), ("rate", {"lam": 2.0}), ("Poisson-Bust", {})]:
        with pytest.raises(ValueError) as a:
            EC.check_constants(name, **kw)
        with pytest.raises(ValueError) as b:
            E.build_encoder(name, **kw)
        assert str(a.value) == str(b.value)
    assert E.build_encoder("Poisson-Burst", tau=4).params() == EC.check_constants("poisson_burst", tau=4).params()


def test_smoke_run_has_its_own_output_root(tmp_path):
    """`make smoke` (lib.core.smoke): a copy of the sources at the smoke scale, without the committed run's outputs
    (dvc.lock, results/<stage>, figures) but with results/history (99's frozen inputs); this tree is untouched and
    cannot be the output root; the Makefile validates params.yaml before the copy runs."""
    from lib.core import smoke
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "results").rglob("*") if p.is_file()}
    dest = smoke.prepare(tmp_path / "smoke", overrides={"train.seed": 3})
    params = yaml.safe_load((dest / "params.yaml").read_text())
    assert params["scale"] == "smoke" and params["train"]["seed"] == 3
    assert (dest / "dvc.yaml").is_file() and (dest / "lib/core/smoke.py").is_file() and (dest / ".git").is_dir()
    assert not (dest / "dvc.lock").exists() and not (dest / "figures").exists()
    assert sorted(p.name for p in (dest / "results").iterdir()) == ["history"]
    config.load(dest / "params.yaml")
    (dest / "results/02_activation_quantization").mkdir()
    (dest / "results/02_activation_quantization/results.csv").write_text("mine")
    smoke.prepare(dest)                                               # a rerun keeps the copy's own results
    assert (dest / "results/02_activation_quantization/results.csv").read_text() == "mine"
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "results").rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match="must not be this working tree"):
        smoke.prepare(ROOT)
    recipe = (ROOT / "Makefile").read_text().split("\nsmoke:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("-m lib.core.config") < recipe.index("-m lib.core.smoke")


def test_make_lab_selects_the_project_kernel_and_allows_root():
    """`make lab` opens the notebooks with the kernel `snn-privacy` (the one make setup installs, that papermill uses)
    and adds --allow-root exactly when run as root (JupyterLab refuses root otherwise)."""
    import os
    import subprocess
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("jupyter lab")][-1]
    assert "--MappingKernelManager.default_kernel_name=snn-privacy" in line and "notebooks/" in line
    assert ("--allow-root" in line) == (os.getuid() == 0)
