"""The companion's library, in five rooms (each a subpackage). Lower rooms never import higher ones:

    lib.core     config (scales, the top-level validator), data, encoders, neurons, quant, models, train, executor,
                 resnet, sew, ptq, efficiency: datasets, networks, training, quantization, cost measurements
    lib.claims   metrics (ROC, AUC, TPR at FPR, paired statistics), verdicts (the engine), registry (the papers'
                 claims as data), published (the papers' transcribed numbers)
    lib.attacks  mia (shadow SVM, loss threshold), lira (LiRA, RMIA), adversarial (FGSM, PGD, Square, masking checks)
    lib.stages   one module per pipeline stage, each owning its params section as a frozen Params: base (open_stage,
                 loaders, stores, tidy tables), membership (02-04), temporal (05), ptq_privacy (+ _tables, 06),
                 grad_obf (+ _params, _tables, 07), ladder (+ _params, _tables, 08), summary (99)
    lib.report   theme, plots (+ plots_ptq, plots_adversarial, plots_ladder): figures drawn from results files; it
                 imports nothing from the other rooms, and stages may borrow its labels

A notebook starts with `stage = lib.open_stage("<stage name>", params_file, scale)`.
"""
import os as _os
import time as _time

IMPORTED = _time.perf_counter()   # when this process imported lib: where a notebook's clock starts (Stage.started)

if _os.environ.get("SNN_PRIVACY_NOTEBOOK_OUTPUT"):   # a worker of a notebook's stage (lib.core.progress.NOTEBOOK_ENV)
    from .core.progress import notebook_output as _notebook_output
    _notebook_output()


def open_stage(name: str, params_file: str = "params.yaml", scale: str | None = None):
    """See lib.stages.base.open_stage (imported lazily so that `import lib` stays cheap)."""
    from .stages.base import open_stage as _open
    return _open(name, params_file, scale)


__all__ = ["open_stage"]
