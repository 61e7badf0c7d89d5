"""End to end: `dvc repro` of the whole pipeline at smoke scale in a copy of this working tree.

Checks that every stage's results and figures exist and parse, that executed notebooks hold no errors,
and that a second `dvc repro` with nothing changed runs nothing; and (fast, no repro) that dvc.yaml keeps its
table-of-contents shape and that every stage depends on every lib module its notebook uses. Uses the offline
mirror named by $SNN_PRIVACY_DATA_MIRROR (CIFAR-10 through its labelled JPEG stand-in, as these machines require).
"""
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    mirror = os.environ.get("SNN_PRIVACY_DATA_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("set SNN_PRIVACY_DATA_MIRROR to the dataset mirror (make test does)")
    from lib.core import smoke   # what `make smoke` runs: a copy of the sources, its own output root
    repo = smoke.prepare(tmp_path_factory.mktemp("smoke") / "repo", "smoke",
                         overrides={"00_data.cifar10_source": "jpeg-standin"})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    env = smoke.env()
    log = _run(["dvc", "repro"], repo, env)
    return repo, env, log, params


def test_every_stage_ran_and_wrote_parseable_results(smoke_repo):
    repo, env, log, params = smoke_repo
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        nb = repo / "results" / name / f"{name}.ipynb"
        assert nb.is_file(), f"{name}: executed notebook missing"
        outputs = [o for c in nbformat.read(nb, 4).cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"{name}: notebook has errors"
        # a reader opens the executed copy: its figures must be images, not "<Figure size …>" text
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}: the executed notebook shows no figure"
        for out in stage.get("outs", []):
            path = repo / (out if isinstance(out, str) else next(iter(out)))
            assert path.exists(), f"{name}: output {path} missing"
            for f in [path] if path.is_file() else path.rglob("*"):
                if f.suffix == ".csv":
                    assert len(pd.read_csv(f)) > 0, f
                elif f.suffix == ".json":
                    json.loads(f.read_text())
        assert any((repo / "figures" / name).glob("*.png")), f"{name}: no figure"
    for path in yaml.safe_load((repo / "dvc.yaml").read_text())["metrics"]:
        assert json.loads((repo / path).read_text()), f"{path}: metrics missing or empty"


def test_results_say_their_scale_and_data_source(smoke_repo):
    repo, *_ = smoke_repo
    metrics = json.loads((repo / "results/01_models/metrics.json").read_text())
    assert metrics["scale"] == "smoke"
    acc = pd.read_csv(repo / "results/01_models/accuracy.csv")
    assert set(acc["scale"]) == {"smoke"}
    assert set(acc.loc[acc.dataset == "cifar10", "data_source"]) == {"CIFAR-10 JPEG stand-in (not CIFAR-10)"}
    assert set(acc["dataset"]) == {"mnist", "fmnist", "cifar10", "iris", "breast_cancer"}


def test_second_repro_runs_nothing(smoke_repo):
    repo, env, *_ = smoke_repo
    out = _run(["dvc", "repro"], repo, env)
    assert "Running stage" not in out, out
    assert "up to date" in _run(["dvc", "status"], repo, env)


def _lib_files(text: str, here: Path | None = None) -> set[Path]:
    """Files of lib that `text` imports: `from lib.core import a, b`, `from lib.core.x import ...`,
    `from lib import open_stage` (lib/__init__.py) and, inside lib (`here` = the importing file), relative imports."""
    import ast
    files = set()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:   # relative: resolve against the importing file's package
            base = (here.parent if here else ROOT / "lib")
            for _ in range(node.level - 1):
                base = base.parent
            parts = node.module.split(".") if node.module else []
        elif node.module and (node.module == "lib" or node.module.startswith("lib.")):
            base, parts = ROOT, node.module.split(".")
        else:
            continue
        pkg = base.joinpath(*parts)
        if pkg.with_suffix(".py").is_file():
            files.add(pkg.with_suffix(".py"))
        elif (pkg / "__init__.py").is_file():
            files.add(pkg / "__init__.py")
            files.update(pkg / f"{a.name}.py" for a in node.names if (pkg / f"{a.name}.py").is_file())
    return files


def test_dvc_yaml_is_a_table_of_contents():
    """Each stage runs its notebook with the one command in `vars`, writes its results/<stage> and figures/<stage>
    folders (tracked by git, not by the DVC cache), depends on `train` whole and never on `execution` (where units
    run: switching a run to Ray reruns nothing); the top-level `metrics` block names every metrics.json a stage
    writes (results/<stage>/metrics.json, as committed)."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, st in dvc["stages"].items():
        assert st["cmd"] == "${notebook} " + name, name
        assert f"notebooks/{name}.ipynb" in st["deps"], name
        outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in st["outs"]}
        for folder in (f"results/{name}", f"figures/{name}"):
            assert outs.get(folder) == {folder: {"cache": False}}, (name, folder)
        assert not any(p == "execution" or p.startswith("execution.") for p in st["params"]), name
        if name != "99_claims":
            assert "train" in st["params"] and not any(p.startswith("train.") for p in st["params"]), name
    committed = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "results").glob("*/metrics.json"))
    assert sorted(dvc["metrics"]) == committed


def test_every_stage_depends_on_every_lib_module_its_notebook_uses():
    """A change to any lib module a notebook imports (directly or through lib) must rerun its dvc stage: the
    stage lists that file or one of its folders (lib/core, lib/claims, lib/attacks, lib/stages, lib/report)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    problems = []
    for name, st in stages.items():
        nb = next(d for d in st["deps"] if d.endswith(".ipynb"))
        code = "\n".join("".join(c["source"]) for c in json.loads((ROOT / nb).read_text())["cells"]
                         if c["cell_type"] == "code")
        todo, used = list(_lib_files(code)), set()
        while todo:
            f = todo.pop()
            if f not in used:
                used.add(f)
                todo += _lib_files(f.read_text(), here=f)
        deps = [ROOT / d for d in st["deps"]]
        missing = sorted(str(f.relative_to(ROOT)) for f in used if not any(f == d or d in f.parents for d in deps))
        if missing:
            problems.append(f"{name}: deps miss {missing}")
        assert used, f"{name}: no lib import found in {nb}"
    assert not problems, "dvc.yaml: " + "; ".join(problems)


def test_every_notebook_cell_has_a_unique_id():
    """nbformat 4.5 requires cell ids (papermill warns today and nbformat will refuse later)."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        ids = [c.get("id") for c in cells]
        assert all(ids), f"{nb.name}: a cell without an id"
        assert len(set(ids)) == len(ids), f"{nb.name}: duplicate cell ids"
