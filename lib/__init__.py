"""The companion's library, in three layers (each a subpackage):

    lib.core     config, data, encoders, neurons, quant, models, train, pipeline — datasets, networks, training
    lib.attacks  mia (shadow SVM, loss threshold), metrics, verdicts, membership, temporal, efficiency — attacks,
                 measurements and the statistics that turn them into verdicts
    lib.report   plots, paper — figures from results files, the papers' published numbers

A notebook starts with `stage = lib.open_stage("<stage name>", params_file, scale)`.
"""


def open_stage(name: str, params_file: str = "params.yaml", scale: str | None = None):
    """See lib.core.pipeline.open_stage (imported lazily so that `import lib` stays cheap)."""
    from .core.pipeline import open_stage as _open
    return _open(name, params_file, scale)


__all__ = ["open_stage"]
