"""What an executed notebook stores (issue 23, item 7), checked by executing a small notebook with papermill on the
project kernel, as dvc.yaml runs a stage: with SNN_PRIVACY_PROGRESS=terminal every progress bar (lib.core.progress)
goes to the terminal — papermill's own stderr — and none into the stored notebook; without it the bars stay in the
notebook (JupyterLab). Warnings print without machine paths (open_stage), torch's CUDA probe prints nothing, and a
figure is one image output with alt text naming its axes (lib.report.theme.show / the figure formatter)."""
import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "snn-privacy"   # `make setup` installs it
BIN = Path(sys.executable).parent


def _kernel_installed() -> bool:
    out = subprocess.run([BIN / "jupyter", "kernelspec", "list", "--json"], capture_output=True, text=True)
    return out.returncode == 0 and KERNEL in json.loads(out.stdout).get("kernelspecs", {})


needs_kernel = pytest.mark.skipif(not (shutil.which("papermill", path=str(BIN)) and _kernel_installed()),
                                  reason=f"papermill and the `{KERNEL}` kernel (make setup) are needed")

TORCH_FILE = "/somewhere/.venv/lib/python3.11/site-packages/torch/nn/modules/module.py"
CELLS = [
    # 0: a stage's setup, then a warning raised "in" a site-packages file and torch's CUDA probe
    f"""import warnings
from lib import open_stage
stage = open_stage("00_data")
warnings.warn_explicit("a planted warning", UserWarning, filename={TORCH_FILE!r}, lineno=7)
import torch.utils.cpp_extension""",
    # 1: a bar of lib.core.progress and one drawn by a lib function
    """from lib.core.progress import tqdm
from lib.stages import base
for i in tqdm(range(30), desc="plantedbar", mininterval=0):
    pass
base.train_all(None, [])
print("loops done")""",
    # 2: a figure saved and shown
    """from lib.report import plots
fig, ax = plots.plt.subplots()
ax.plot([1, 2, 3], [50, 60, 70], label="SNN")
ax.set_xlabel("epoch"), ax.set_ylabel("accuracy (%)"), ax.set_title("planted panel"), ax.legend()
plots.show(fig, FIGURE, alt="A planted figure.")""",
    # 3: a figure that ends a cell (the formatter), and one never shown (no inline backend draws it anyway)
    """unshown = plots.plt.figure()
fig2, ax2 = plots.plt.subplots()
ax2.set_xlabel("ε (1/255)"), ax2.set_ylabel("attack AUC")
fig2""",
]


def _execute(tmp_path: Path, terminal: bool) -> tuple[list, str]:
    """Run the notebook as dvc.yaml's command does; returns (its code cells' outputs, papermill's stdout + stderr)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"FIGURE = {str(tmp_path / 'figure')!r}")] + [
        nbformat.v4.new_code_cell(c) for c in CELLS]
    src, dst = tmp_path / "in.ipynb", tmp_path / f"out_{terminal}.ipynb"
    nbformat.write(nb, src)
    env = {k: v for k, v in os.environ.items() if k != "SNN_PRIVACY_PROGRESS"}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    if terminal:
        env["SNN_PRIVACY_PROGRESS"] = "terminal"
    run = subprocess.run([BIN / "papermill", src, dst, "-k", KERNEL, "--cwd", ROOT, "--no-progress-bar",
                          "--log-output"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    cells = nbformat.read(dst, 4).cells[1:]
    return [c.get("outputs", []) for c in cells], run.stdout + run.stderr


def _streams(cell_outputs: list) -> str:
    """The text one cell printed (stdout and stderr)."""
    return "".join(o.get("text", "") for o in cell_outputs if o["output_type"] == "stream")


@needs_kernel
def test_pipeline_run_keeps_bars_on_the_terminal_and_the_notebook_clean(tmp_path):
    outputs, terminal = _execute(tmp_path, terminal=True)
    stored = json.dumps(outputs, ensure_ascii=False)
    # progress bars: on papermill's terminal, no fragment in the stored notebook
    assert "plantedbar" in terminal and "models: 0it" in terminal
    assert "plantedbar" not in stored and "models:" not in stored and "it/s" not in stored and "%|" not in stored
    assert _streams(outputs[1]) == "loops done\n"
    # warnings: visible, one line, without this machine's paths; torch's CUDA probe says nothing
    assert "UserWarning (torch.nn.modules.module): a planted warning\n" in _streams(outputs[0])
    assert "site-packages" not in stored and str(ROOT) not in stored and "/somewhere" not in stored
    assert "No CUDA runtime" not in stored and "cpp_extension" not in stored

    # a figure saved and shown: one display_data image whose alt names the figure's own texts; files written
    (fig_out,) = outputs[2]
    assert fig_out["output_type"] == "display_data" and "image/png" in fig_out["data"]
    alt = fig_out["metadata"]["image/png"]["alt"]
    assert alt.startswith("A planted figure. ") and "planted panel" in alt
    assert "X axis: epoch." in alt and "Y axis: accuracy (%)." in alt and "SNN" in alt
    assert fig_out["data"]["text/plain"] == alt            # the text a reader without images gets
    from PIL import Image
    png = Image.open(io.BytesIO(base64.b64decode(fig_out["data"]["image/png"])))
    assert png.format == "PNG" and png.size[0] > 100
    assert (tmp_path / "figure.pdf").is_file() and Image.open(tmp_path / "figure.png").text["Description"] == alt

    # a figure that ends a cell: exactly one image (the unshown one draws nothing), described too
    images = [o for o in outputs[3] if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(outputs[3]) == 1
    assert base64.b64decode(images[0]["data"]["image/png"]).startswith(b"\x89PNG")
    alt2 = images[0]["metadata"]["image/png"]["alt"]
    assert "X axis: ε (1/255)." in alt2 and "Y axis: attack AUC." in alt2


@needs_kernel
def test_interactive_run_keeps_bars_in_the_notebook(tmp_path):
    outputs, _ = _execute(tmp_path, terminal=False)
    stored = _streams(outputs[1])
    assert "plantedbar" in stored and "30/30" in stored and "models: 0it" in stored


def test_warnings_name_their_module_not_a_path():
    import warnings
    from lib.core import progress
    site = "/home/u/.venv/lib/python3.11/site-packages/brevitas/graph/gptq.py"
    assert progress.format_warning("slow", UserWarning, site, 12) == "UserWarning (brevitas.graph.gptq): slow\n"
    assert progress.warning_source(str(ROOT / "lib" / "core" / "data.py")) == "lib.core.data"
    assert progress.warning_source("/tmp/ipykernel_4242/1234.py") == "notebook cell"
    assert progress.warning_source(progress.__file__) == "lib.core.progress"   # an imported module: its dotted name
    before, env = warnings.formatwarning, os.environ.get(progress.NOTEBOOK_ENV)
    try:
        progress.notebook_output()
        text = warnings.formatwarning("overflow", RuntimeWarning, str(ROOT / "lib" / "attacks" / "lira.py"), 3, "x")
        assert text == "RuntimeWarning (lib.attacks.lira): overflow\n" and str(ROOT) not in text
    finally:
        warnings.formatwarning = before
        if env is None:
            os.environ.pop(progress.NOTEBOOK_ENV, None)


def test_a_stage_worker_prints_warnings_path_free_too():
    """A process that imports lib with NOTEBOOK_ENV set (a worker a notebook started: its stderr is the notebook's)
    formats its warnings as the notebook does."""
    from lib.core import progress
    code = "import lib, warnings; from lib.core import data; warnings.warn_explicit('w', UserWarning, data.__file__, 1)"
    env = dict(os.environ, **{progress.NOTEBOOK_ENV: "1"})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.stderr == "UserWarning (lib.core.data): w\n"
    env.pop(progress.NOTEBOOK_ENV)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert str(ROOT / "lib" / "core" / "data.py") in out.stderr          # without it: Python's own format
