# Every target bootstraps .venv (Python 3.10+) and installs the project into it when missing.
# The interpreter that creates .venv, the project's virtual environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after `pip install -e '.[dev]'`; the install is redone when pyproject.toml changes.
STAMP := $(VENV)/.installed
# Prefect's settings (home, start-up timeout, analytics) are in prefect.toml, so direct
# `python -m flows...` runs get them too; nothing Prefect-specific is set here.

.PHONY: run test test-all bench reproduce ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the main job on the built-in data
	$(BIN)/python -m flows.window_loop

test: $(STAMP)  ## the test suite without the tests marked slow (end-to-end runs in subprocesses, Ray, real training), on both cores
	$(BIN)/python -m pytest -n 2 -m "not slow"

test-all: $(STAMP)  ## every test, the slow ones included
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)  ## speed and quality figures (printed)
	$(BIN)/python -m benchmarks.bench

reproduce: $(STAMP)  ## every study on the built-in data (simulated executor over a cached trace), reports, reports/headline.md
	$(BIN)/python -m flows.reproduce

ui: $(STAMP)  ## MLflow UI over the project's store on http://127.0.0.1:5000 (one process, no job runners: flows/ui.py)
	$(BIN)/python -m flows.ui --store sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean:  ## Hydra's run folders and Prefect's state
	rm -rf outputs .prefect
