"""Progress bars for every long loop of lib: one place decides where they are drawn.

`tqdm(...)` takes tqdm's arguments. A bar is text (never a widget) and goes to:
  * the terminal, when the environment variable SNN_PRIVACY_PROGRESS is `terminal` — set by dvc.yaml's papermill
    command, so that a pipeline run shows its bars in papermill's log and the executed notebooks (results/<stage>/)
    store none of their redraws. Inside a Jupyter kernel that is the kernel's own stderr (the copy of file descriptor
    2 that ipykernel keeps before it forwards the descriptor to the notebook);
  * the notebook (sys.stderr) otherwise: a reader running a notebook in JupyterLab sees the bars under the cell.
"""
from __future__ import annotations

import io
import os
import sys

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
