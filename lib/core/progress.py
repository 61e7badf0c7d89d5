"""What a run prints on its way: progress bars for every long loop of lib, and how warnings read.

`tqdm(...)` takes tqdm's arguments. A bar is text (never a widget) and goes to:
  * the terminal, when the environment variable SNN_PRIVACY_PROGRESS is `terminal` — set by dvc.yaml's papermill
    command, so that a pipeline run shows its bars in papermill's log and the executed notebooks (results/<stage>/)
    store none of their redraws. Inside a Jupyter kernel that is the kernel's own stderr (the copy of file descriptor
    2 that ipykernel keeps before it forwards the descriptor to the notebook);
  * the notebook (sys.stderr) otherwise: a reader running a notebook in JupyterLab sees the bars under the cell.

`notebook_output()` (called by open_stage) prints every warning as one line without machine paths and silences torch's
CUDA probe, in the notebook's process and — through the environment variable NOTEBOOK_ENV, read when `lib` is
imported — in the worker processes it starts (their stderr is the notebook's too: ipykernel forwards file
descriptor 2, which they inherit).
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from tqdm.std import tqdm as _tqdm

ENV = "SNN_PRIVACY_PROGRESS"
_terminal: io.TextIOBase | None = None


def stream():
    """Where bars are drawn now (see the module docstring)."""
    global _terminal
    if os.environ.get(ENV, "").lower() != "terminal":
        return sys.stderr
    if _terminal is None:
        fd = getattr(sys.stderr, "_original_stdstream_copy", None)   # ipykernel forwarding fd 2 into the notebook
        if fd is None:
            _terminal = sys.__stderr__ if sys.__stderr__ is not None else sys.stderr
        else:
            _terminal = io.TextIOWrapper(io.FileIO(os.dup(fd), "w", closefd=True), line_buffering=True)
    return _terminal


def tqdm(*args, **kwargs):
    """tqdm.tqdm drawn on `stream()` (unless the caller names its own `file`)."""
    kwargs.setdefault("file", stream())
    return _tqdm(*args, **kwargs)


# ----------------------------------------------------------------------------- warnings and log lines

NOTEBOOK_ENV = "SNN_PRIVACY_NOTEBOOK_OUTPUT"   # set by notebook_output; a process importing lib then does the same


def warning_source(filename: str) -> str:
    """Who raised a warning, without the machine's paths: the dotted name of the imported module whose file it is
    (e.g. `lib.core.data`, `torch.nn.modules.module`), the dotted path below site-packages or below lib/ for a file
    not imported (yet), "notebook cell" for code typed in a notebook, else the file's name alone."""
    path = Path(filename)
    for name, module in list(sys.modules.items()):
        f = getattr(module, "__file__", None)
        if f and Path(f) == path:
            return name
    parts = path.parts
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts and parts.index(anchor) + 1 < len(parts):
            rest = Path(*parts[parts.index(anchor) + 1:]).with_suffix("").parts
            return ".".join(rest).removesuffix(".__init__")
    lib_dir = Path(__file__).resolve().parents[1]
    if path.is_relative_to(lib_dir):
        return ".".join(("lib", *path.relative_to(lib_dir).with_suffix("").parts)).removesuffix(".__init__")
    if any(p.startswith("ipykernel_") for p in parts) or path.name.startswith("<ipython-input"):
        return "notebook cell"
    return path.name


def format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line, `<Category> (<module>): <message>`, instead of Python's
    `/absolute/path/file.py:123: Category: message` plus the source line: executed notebooks are read on other
    machines, where this machine's paths mean nothing (and give away its layout)."""
    return f"{category.__name__} ({warning_source(filename)}): {message}\n"


def notebook_output() -> None:
    """Print every warning of this process as `format_warning` does (warnings stay visible: they are information),
    and silence torch's "No CUDA runtime is found, using CUDA_HOME=…" log line (torch.utils.cpp_extension, imported
    by brevitas): it is about compiling C++/CUDA extensions, which this project never does, and it printed a time
    stamp, a process id and a machine path into every executed notebook (the notebook prints its device itself).
    Sets NOTEBOOK_ENV, so that the worker processes this one starts do the same when they import lib."""
    import logging
    import warnings
    os.environ[NOTEBOOK_ENV] = "1"
    warnings.formatwarning = format_warning
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
