"""A pipeline run at another scale in its own output root: a copy of this working tree (`make smoke`).

`prepare(dest)` copies the files git tracks (and the untracked ones it does not ignore) into `dest`, except what the
pipeline writes (dvc.lock, results/<stage>/, figures/), sets `scale` in the copy's params.yaml, and makes the copy a
repository of its own (git + DVC). `dvc repro` there writes only under `dest`: the committed quick results, figures
and checkpoints of this tree are never read as outputs, never removed and never overwritten. A second `prepare` of
the same `dest` refreshes the sources and keeps the copy's own results, dvc.lock and checkpoints, so a rerun reuses
its trained models.

    python -m lib.core.smoke runs/smoke [--scale smoke] [--no-repro]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pipeline_output(rel: str) -> bool:
    """Files of the committed run that a run in the copy writes itself (results/history holds 99's frozen inputs)."""
    parts = Path(rel).parts
    return rel == "dvc.lock" or parts[0] == "figures" or (parts[0] == "results" and parts[1:2] != ("history",))


def sources(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (root / f).is_file() and not _pipeline_output(f)]


def prepare(dest: str | os.PathLike, scale: str = "smoke", root: Path = ROOT, overrides: dict | None = None) -> Path:
    """Copy the working tree's sources into `dest` with `scale` (and `overrides`: {"section.key": value}) set in its
    params.yaml; returns `dest` (absolute). Refuses a `dest` that is the tree itself."""
    dest = Path(dest).resolve()
    if dest == root.resolve():
        raise ValueError(f"{dest}: the output root of a smoke run must not be this working tree")
    for rel in sources(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["scale"] = scale
    for key, value in (overrides or {}).items():
        node = params
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (dest / ".git").exists():
        git = ["git", "-c", "user.name=smoke", "-c", "user.email=smoke@localhost"]
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
        subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
        subprocess.run(git + ["commit", "-qm", f"{scale} run of {root}"], cwd=dest, check=True)
    return dest


def env() -> dict:
    """The environment of a run in the copy: this interpreter's bin first on PATH (dvc, papermill, the kernel)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="the output root, e.g. runs/smoke (git-ignored)")
    ap.add_argument("--scale", default="smoke", choices=("smoke", "quick", "paper"))
    ap.add_argument("--no-repro", action="store_true", help="only prepare the copy")
    args = ap.parse_args(argv)
    dest = prepare(args.dest, args.scale)
    print(f"{args.scale} run in {dest} (its results: {dest / 'results'}; the committed ones are untouched)")
    if args.no_repro:
        return 0
    return subprocess.run(["dvc", "repro"], cwd=dest, env=env()).returncode


if __name__ == "__main__":
    sys.exit(main())
