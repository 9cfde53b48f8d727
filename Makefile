# Every target bootstraps .venv (Python 3.10+) and installs the project into it when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Prefect keeps its state (the temporary server's database) inside the project.
export PREFECT_HOME ?= $(CURDIR)/.cache/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
# The first start of the temporary server creates its database, which takes longer than the 20 s default.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export MPLBACKEND ?= Agg

.PHONY: run test bench reproduce ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the main job on the built-in data
	mkdir -p $(PREFECT_HOME)
	$(BIN)/python -m flows.window_loop

test: $(STAMP)  ## the test suite
	$(BIN)/python -m pytest

bench: $(STAMP)  ## speed and quality figures (printed)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/python -m benchmarks.bench

reproduce: $(STAMP)  ## every study on the built-in data (simulated executor over a cached trace), reports, reports/headline.md
	mkdir -p $(PREFECT_HOME)
	$(BIN)/python -m flows.reproduce

ui: $(STAMP)  ## MLflow UI over the project's store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root ./mlruns/artifacts --host 127.0.0.1 --port 5000

clean:
	rm -rf outputs .cache/prefect
