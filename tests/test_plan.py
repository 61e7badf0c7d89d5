"""bench/plan.py (make plan) and the CPU-side parts of bench/gpu_check.py (make gpu-check)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check as GC   # noqa: E402
import plan as PL        # noqa: E402
from lib.core import config as C   # noqa: E402


def _run(argv, tmp_path, name):
    out = tmp_path / f"{name}.json"
    rc = PL.main([*argv, "--json", str(out)])
    return rc, json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    rc, out = _run(["--scale", "quick", "--no-fail"], tmp_path_factory.mktemp("plan"), "quick")
    assert rc == 0
    return {r["stage"]: r for r in out["stages"]}


def test_quick_plan_counts_units_as_the_stages_define_them(quick):
    p = C.load(ROOT / "params.yaml", "quick")
    assert list(quick) == PL.STAGES and all(r["units"] > 0 and r["to train"] > 0 for r in quick.values())
    # 01: every dataset x kind x seed of its family, targets only
    s01 = C.section(p, "01_models")
    n01 = sum(len(s01["kinds"]) * p["scales"]["quick"]["seeds"][C.family(ds)] for ds in s01["datasets"])
    assert quick["01_models"]["units"] == n01 == 24
    # 02: per dataset, ANN full precision + bits x thresholds; SNN full precision (once: at the default threshold
    # it is the same unit), + the other thresholds unquantized, + bits x thresholds (x 2 with the output variant);
    # each x seeds x (target, shadow)
    s02 = C.section(p, "02_activation_quantization")
    B, TH = len(s02["bits"]), [float(t) for t in s02["thresholds"]]
    other = len([t for t in TH if t != float(p["model"]["snn"]["threshold"])])
    per_ds = (1 + B * len(TH)) + (1 + other + B * len(TH) * (2 if s02["output_layer_variant"] else 1))
    seeds = {ds: len(C.effective(p, s02, ds)["seeds"]) for ds in s02["datasets"]}
    assert quick["02_activation_quantization"]["units"] == sum(per_ds * 2 * seeds[ds] for ds in s02["datasets"]) == 186
    # 06: one unit per ResNet of the keep matrix
    assert quick["06_post_training_quantization"]["units"] == C.section(p, "06_post_training_quantization")["models"]


def test_cached_counts_the_checkpoint_files_on_disk(quick):
    """In CI there are no checkpoints (0 cached); in a working copy with the quick run's checkpoints, a stage's cached
    count is at most the .pt files of its folder, and 01/02 (whose folders hold quick units only) match them."""
    for st, r in quick.items():
        on_disk = len(list((ROOT / "checkpoints" / st).glob("*/*.pt")))
        assert 0 <= r["cached"] <= r["to train"] and r["left"] == r["to train"] - r["cached"]
        if st in ("01_models", "02_activation_quantization"):
            assert r["cached"] == on_disk, st
        if on_disk == 0:
            assert r["cached"] == 0, st


def test_a_checkpoint_file_makes_its_unit_cached(tmp_path):
    import paper_scale_cost as PSC
    p = C.load(ROOT / "params.yaml", "quick")
    p["01_models"] = {**p["01_models"], "checkpoints_dir": str(tmp_path / "ckpt01")}
    sizes = {**PL.PAPER_SIZES, **PSC.dataset_sizes(PSC.Results("git:HEAD"))}
    u = PL.Units(p, sizes, {})
    u.s01()
    df = PL.cached(__import__("pandas").DataFrame(u.rows), p, {})
    assert not df.cached.any()
    for ck in df.ckpt[:2]:
        (tmp_path / "ckpt01" / ck).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ckpt01" / ck).write_bytes(b"")
    assert PL.cached(df, p, {}).cached.sum() == 2


def _params_file(tmp_path, edit=lambda p: p):
    """params.yaml with data/raw and the mirror pointing at empty folders (no dataset at hand), edited by `edit`."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["00_data"]["raw_dir"] = str(tmp_path / "raw")
    p = edit(p)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(p, sort_keys=False))
    return f


def test_paper_scale_fails_naming_the_missing_datasets_and_no_fail_prints(tmp_path, monkeypatch, capsys):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("SNN_PRIVACY_DATA_MIRROR", str(tmp_path / "mirror"))
    f = _params_file(tmp_path)
    rc, out = _run(["--params", str(f), "--scale", "paper"], tmp_path, "paper")
    assert rc == 1 and out["stages"] is None
    text = capsys.readouterr().out
    missing = [ln for ln in out["problems"] if ln.startswith("dataset:")]
    for ds in ("cifar100", "tinyimagenet", "cifar10dvs", "mnist"):
        assert any(f"`{ds}`" in ln for ln in missing), ds
        assert f"`{ds}`" in text
    assert "PLAN CHECKS FAILED" in text and "Training units" not in text
    rc, out = _run(["--params", str(f), "--scale", "paper", "--no-fail"], tmp_path, "paper2")
    assert rc == 0 and out["problems"] and "Training units at scale paper" in capsys.readouterr().out
    st = {r["stage"]: r for r in out["stages"]}
    assert all(r["units"] > 0 for r in st.values())
    assert st["06_post_training_quantization"]["units"] == 65 and st["07_gradient_sparsity"]["units"] == 11
    assert all(r["GPU-hours left"] == "not measured" for r in st.values())   # no results/gpu_check.json in tests


def test_quick_plan_passes_its_checks_with_the_data_here():
    if not PL.cuda_available():
        _, problems = PL.check(ROOT / "params.yaml", "quick")
        assert not [x for x in problems if x.startswith("cuda")]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU-only checks need a machine without CUDA")
def test_cuda_only_settings_are_flagged_without_cuda(tmp_path):
    def edit(p):
        p["execution"]["ray_gpus_per_unit"] = 1
        p["train"]["device"] = "cuda"
        return p
    _, problems = PL.check(_params_file(tmp_path, edit), "quick")
    cuda = [x for x in problems if x.startswith("cuda:")]
    assert any("ray_gpus_per_unit is 1" in x for x in cuda) and any("train.device is `cuda`" in x for x in cuda)
    params, problems = PL.check(_params_file(tmp_path, lambda p: {**p, "verdicts": {**p["verdicts"], "typo": 1}}),
                                "quick")
    assert params is None and "typo" in problems[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_gpu_check_on_cpu_skips_every_cuda_part_and_writes_nothing(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--skip-smoke", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr
    for part in GC.PARTS:
        assert f"[SKIP] {part}: no CUDA" in r.stdout
    assert not out.exists() and "not written" in r.stdout
    with pytest.raises(SystemExit):
        GC.parse(["--steps", "1"])
    assert GC.parse(["--skip-smoke"]).skip_smoke



def test_stack_check_and_unit_timing_run_on_cpu(tmp_path, one_thread):
    """(b) and (d) on the CPU at toy size: the code gpu-check runs on CUDA, so that it cannot first break there."""
    ok, msg, data = GC.stack_equal(k=2, device="cpu")
    assert ok, msg
    assert data["max_abs_diff"] < GC.TOL
    p = C.load(ROOT / "params.yaml", "quick")
    q6, q7 = p["06_post_training_quantization"]["by_scale"]["quick"], p["07_gradient_sparsity"]["by_scale"]["quick"]
    q6["arch"] = {"blocks": [1, 1, 1], "widths": [4, 8, 8]}
    q7.update(width=4, T=2)
    units, errors = GC.time_units(p, steps=2, device="cpu")
    assert not errors and set(units) == {"06_post_training_quantization", "07_gradient_sparsity"}
    for st, u in units.items():
        steps = -(-u["members"] // u["batch_size"]) * u["epochs"]   # the unit's optimizer steps
        per = u.get("seconds_per_step_per_model", u.get("seconds_per_step"))
        assert per > 0 and u["seconds_per_unit"] == pytest.approx(per * steps)
        assert u["seconds_per_work"] == pytest.approx(u["seconds_per_unit"] / (u["members"] * u["epochs"]
                                                                               * u["mflops_per_image"]))


def test_plan_reads_gpu_timings(tmp_path):
    """The JSON gpu-check writes gives GPU-hours to the stages it timed; the others stay 'not measured'."""
    part = GC.Part("timing").set("PASS", "fake")
    unit = {"seconds_per_work": 1e-6, "seconds_per_unit": 1.0, "net": "x"}
    f = GC.write_json(tmp_path / "gpu.json", [part], {"06_post_training_quantization": unit})
    assert json.loads(f.read_text())["parts"]["timing"]["status"] == "PASS"
    table, notes = PL.plan(C.load(ROOT / "params.yaml", "quick"), gpu_timing=f)
    g = dict(zip(table.stage, table["GPU-hours left"]))
    assert isinstance(g["06_post_training_quantization"], float) and g["06_post_training_quantization"] >= 0
    assert all(v == "not measured" for s, v in g.items() if s != "06_post_training_quantization")
    assert any("gpu.json" in n for n in notes)
