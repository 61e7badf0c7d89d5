# Two commands for a fresh clone:  make repro  (the whole pipeline at the scale in params.yaml)
#                                  make test   (the test suite)
# Both create the environment (.venv, pinned packages, Jupyter kernel "snn-privacy") when it is missing.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Where the data stage finds the original dataset files when it cannot download them.
export SNN_PRIVACY_DATA_MIRROR ?= $(abspath ../shared/datasets)

.PHONY: setup repro smoke test lab bench site clean-results plan gpu-check

$(STAMP): requirements.txt requirements-lock.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -c requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt   # see its header
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .   # lib as an editable package
	$(PY) -m ipykernel install --sys-prefix --name snn-privacy --display-name "Python (snn-privacy)"
	touch $(STAMP)

setup: $(STAMP)

# Offline machines (no CIFAR-10 download, no original archive in the mirror) can opt in to the labelled
# JPEG stand-in explicitly:  make repro CIFAR10_SOURCE=jpeg-standin   (this edits params.yaml, visibly)
repro: $(STAMP)
ifdef CIFAR10_SOURCE
	sed -i 's/^  cifar10_source: .*/  cifar10_source: $(CIFAR10_SOURCE)/' params.yaml
	@echo "params.yaml: 00_data.cifar10_source = $(CIFAR10_SOURCE)"
endif
	$(PY) -m lib.core.config params.yaml   # validate first: a typo stops here, before dvc removes any stage's outputs
	dvc repro

# The smoke scale without editing params.yaml, in its own output root: a copy of this working tree under runs/smoke
# (git-ignored; the committed quick results, figures and checkpoints are never touched). Rerunning reuses that copy's
# checkpoints; `rm -rf runs/smoke` starts afresh.
smoke: $(STAMP)
	$(PY) -m lib.core.config params.yaml
	$(PY) -m lib.core.smoke runs/smoke

test: $(STAMP)
	$(PY) -m pytest -q

# JupyterLab on the notebooks with the project's kernel; as root (a container) it needs --allow-root.
lab: $(STAMP)
	jupyter lab notebooks/ --MappingKernelManager.default_kernel_name=snn-privacy $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) bench/bench_snn.py
	$(PY) bench/bench_ensemble.py
	$(PY) bench/bench_sew.py
	$(PY) bench/bench_tabular.py
	$(PY) bench/bench_families.py   # the summary: one line per family

# Derived files only: `make repro` brings them back (checkpoints are kept: delete checkpoints/ to retrain;
# results/history holds frozen inputs of 99_claims and is kept too).
clean-results:
	find results -mindepth 1 -maxdepth 1 ! -name history -exec rm -rf {} +
	rm -rf figures

# The companion as a static website, from the committed executed notebooks (nothing is executed, nothing is
# fetched): open site/_build/html/index.html, or `python -m http.server -d site/_build/html`.
site: $(STAMP)
	$(PY) site/build.py site/_build

# What a run at SCALE (default: params.yaml's) would train, what is cached, the hours it would take (extrapolated from
# the committed quick run's timings; GPU-hours once gpu-check has run), and the checks that stop it early (exit 1).
plan: $(STAMP)
	$(PY) bench/plan.py $(if $(SCALE),--scale $(SCALE))

# The CUDA paths on a GPU machine (a few minutes + the smoke pipeline): writes results/gpu_check.json; SKIPs without CUDA.
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py $(GPU_CHECK_ARGS)
