"""Every stage's metrics.json holds the same few headline keys (lib.stages.base.write_metrics), so that
`dvc metrics show --md` is one row per stage narrower than a screen (issue 23, item 8)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lib.claims.verdicts import CLASSES
from lib.stages import base, summary as SU

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WIDTH = 120   # a line of `dvc metrics show --md` must be shorter than this
needs_dvc = pytest.mark.skipif(not shutil.which("dvc", path=str(BIN)), reason="dvc is not installed in this env")


def _claims(classes) -> pd.DataFrame:
    return pd.DataFrame({"claim": [f"X{i}" for i in range(len(classes))], "our verdict": list(classes),
                         "verdict class": list(classes)})


def test_headline_metrics_count_claims_by_class():
    classes = ["supported", "partly supported", "contradicted", "partly contradicted", "mixed", "not resolved",
               "not resolved", "scoped", "structural", "not tested"]
    m = base.headline_metrics("quick", 1.234, 96, _claims(classes))
    assert list(m) == list(base.HEADLINE_KEYS)
    assert m == {"scale": "quick", "minutes": 1.23, "models": 96, "claims": 10, "holds": 2, "fails": 3}
    assert base.headline_metrics("smoke", 0.5, 24) == {"scale": "smoke", "minutes": 0.5, "models": 24}   # no claims


def test_holds_and_fails_are_the_groups_of_notebook_99():
    """`holds`/`fails` count the classes notebook 99's reading calls "holds" and "does not hold"."""
    table = _claims(CLASSES).assign(paper="A", stage="02_activation_quantization", scale="quick")
    r = SU.reading(table)["A"]
    by_class = dict(zip(table.claim, table["verdict class"]))
    assert {by_class[c.split(" ")[0]] for c in r["holds"]} == set(base.HOLDS)
    assert {by_class[c.split(" ")[0]] for c in r["fails"]} == set(base.FAILS)


def test_write_metrics_reads_the_stage_claims_and_clock(tmp_path):
    results = tmp_path / "results" / "05_temporal_dynamics"
    results.mkdir(parents=True)
    stage = base.Stage("05_temporal_dynamics", {"scale": "quick"}, {}, results, tmp_path / "figures", None,
                       started=time.perf_counter() - 90)
    assert base.write_metrics(stage, models=7) == {"scale": "quick", "minutes": 1.5, "models": 7}   # no claims.csv
    _claims(["supported", "contradicted", "not resolved"]).to_csv(results / "claims.csv", index=False)
    m = base.write_metrics(stage, models=7)
    assert json.loads((results / "metrics.json").read_text()) == m
    assert (m["claims"], m["holds"], m["fails"]) == (3, 1, 1) and 1.5 <= m["minutes"] < 2


def test_model_count_reads_keys_and_example_pairs():
    results = pd.DataFrame({"target_key": ["a", "b"], "shadow_key": ["c", "d"], "examples": ["a/c", "b/d"]})
    sweep = pd.DataFrame({"target_key": ["e", "a"], "examples": ["e/f", "a/c"]})   # its shadows only in `examples`
    transfer = pd.DataFrame({"transfer_key": ["g"], "source_key": ["a"], "scratch_key": ["b"]})
    assert base.model_count(results) == 4 and base.model_count(results, sweep, transfer) == 7
    assert base.model_count(pd.DataFrame({"key": ["x", "x", "y"]})) == 2


def _dvc_table(repo: Path) -> list[str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([BIN / "dvc", "metrics", "show", "--md"], cwd=repo, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


@needs_dvc
def test_dvc_metrics_table_fits_a_screen(tmp_path):
    """Every metrics file dvc.yaml lists, written by write_metrics with wide values (a 4-digit model count, a
    2-digit claim count, 3-digit minutes), gives `dvc metrics show --md` lines shorter than WIDTH."""
    paths = yaml.safe_load((ROOT / "dvc.yaml").read_text())["metrics"]
    assert "results/06_post_training_quantization/metrics.json" in paths
    for p in paths:
        claims = None if "01_models" in p else _claims(["supported", "contradicted"] * 6)
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text(json.dumps(base.headline_metrics("quick", 123.45, 1234, claims)))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"metrics": paths}))
    subprocess.run([BIN / "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    lines = _dvc_table(tmp_path)
    assert len(lines) == 2 + len(paths) and lines[0].split("|")[1].strip() == "Path"
    assert {c.strip() for c in lines[0].split("|")[2:-1]} == set(base.HEADLINE_KEYS)
    assert max(map(len, lines)) < WIDTH, "\n".join(lines)


@needs_dvc
def test_committed_metrics_are_the_headline_keys():
    """The committed quick run's metrics.json files: only HEADLINE_KEYS, counts that agree with each stage's
    claims.csv, and a `dvc metrics show --md` of the repository narrower than WIDTH. (Fails until the stages are
    rerun after write_metrics replaced the per-stage metrics dicts.)"""
    paths = yaml.safe_load((ROOT / "dvc.yaml").read_text())["metrics"]
    for p in paths:
        m = json.loads((ROOT / p).read_text())
        assert set(m) <= set(base.HEADLINE_KEYS) and {"scale", "minutes", "models"} <= set(m), f"{p}: {sorted(m)}"
        claims = ROOT / Path(p).parent / "claims.csv"
        if claims.is_file():
            want = base.headline_metrics(m["scale"], m["minutes"], m["models"], pd.read_csv(claims))
            assert m == want, p
    lines = _dvc_table(ROOT)
    assert max(map(len, lines)) < WIDTH, "\n".join(lines)
