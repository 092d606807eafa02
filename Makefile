# DynMultiDep developer commands. `make train` and `make test` work on a fresh
# machine: they create .venv, install torch (TORCH_VERSION) and the project first,
# with the dev tools and the `extract` extra (feature extraction from videos).

VENV ?= .venv
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test test-slow lint format clean bench bench-quick learnability gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev,extract]"
	touch $(STAMP)

# Train on the synthetic corpus (generated on first use) with the default
# configs; pass Hydra overrides with ARGS="...".
train: install
	$(PY) src/train.py $(ARGS)

# Lint (style and the import layers of pyproject.toml) first, then the tests.
test: lint
	$(PY) -m pytest -m "not slow" -q

# Also installs the optional launchers the slow tests exercise (submitit, Optuna).
test-slow: install
	$(PY) -m pip install --quiet -e ".[dev,extract,slurm,optuna]"
	$(PY) -m pytest -m slow -q

lint: install
	$(PY) -m ruff check src scripts tests
	$(PY) -m ruff format --check src scripts tests
	$(VENV)/bin/lint-imports

format: install
	$(PY) -m ruff format src scripts tests
	$(PY) -m ruff check --fix src scripts tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache build src/*.egg-info

# The benchmarks of BENCHMARKS.md (about 20 minutes on 2 cores); bench-quick: a subset.
bench: install
	mkdir -p logs && $(PY) scripts/bench.py --json logs/bench.json --markdown logs/bench.md

bench-quick: install
	$(PY) scripts/bench.py --quick

# The learnability benchmark's full plan (about an hour on 2 cores; BENCHMARKS.md).
learnability: install
	mkdir -p logs && $(PY) scripts/learnability.py --json logs/learnability.json \
		--markdown logs/learnability.md

# The GPU check (README "GPUs"): puts what a GPU machine without a package registry
# needs into .gpu_check/, then runs the check here if this machine has a CUDA GPU.
gpu-check: install
	PYTHON=$(PY) scripts/gpu_check/prepare.sh
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		PYTHON=$(PY) scripts/gpu_check/run.sh logs/gpu_check; \
	else \
		echo "no CUDA GPU here: copy the repository with .gpu_check/ to a GPU machine" \
			"and run scripts/gpu_check/run.sh OUT there (README, GPUs)"; \
	fi
