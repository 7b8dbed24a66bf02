# Every target installs what it needs first; `make install` is quick when already done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export RAY_USAGE_STATS_ENABLED ?= 0
export RAY_ENABLE_UV_RUN_RUNTIME_ENV ?= 0
export PYTHONUNBUFFERED := 1

.PHONY: install sweep test test-fast bench lint format clean

install: $(STAMP)

# torch goes in first, and only when the venv has none: here `pip install torch==2.13.0` takes
# the CPU build on disk; a user with a GPU who installed their own torch keeps it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -qq torch==2.13.0
	$(BIN)/python -m pip install -qq -e '.[dev,dashboard]'
	touch $(STAMP)

sweep: install
	$(BIN)/orchestrate sweeps/lr.yaml

# -X faulthandler: a crash in native code, even at exit, prints every thread's Python stack.
test: install
	$(BIN)/python -X faulthandler -m pytest -q

# The unit tests alone: no Ray, no subprocesses, under a minute.
test-fast: install
	$(BIN)/python -m pytest -q tests/unit

bench: install
	$(BIN)/python -m bench.trainer
	$(BIN)/python -m bench.overhead
	$(BIN)/python -m bench.utilization
	$(BIN)/python -m bench.logging
	$(BIN)/python -m bench.search

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf runs wandb .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
