"""Bad input is answered before the heavy imports: importing the entry point, checking a config and
refusing a command line load neither torch nor Prefect nor MLflow (so the answer takes about a second)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.flows.helpers import PROJECT_ROOT

#: What checking a config never loads.
HEAVY = ("torch", "torchvision", "prefect", "mlflow", "ray", "matplotlib")
#: What importing the entry point does not load either (a trace's CSV files need pandas; a curve fit, SciPy's optimizer).
HEAVY_AT_IMPORT = (*HEAVY, "pandas", "scipy.optimize")

_REPORT = f"""
import json, sys
print(json.dumps(sorted(name for name in {HEAVY_AT_IMPORT!r} if name in sys.modules)))
"""


def loaded_by(code: str) -> list[str]:
    """The heavy packages in ``sys.modules`` after a fresh interpreter ran ``code`` (its last stdout line)."""
    result = subprocess.run([sys.executable, "-c", code + _REPORT], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_entry_point_loads_none_of_them():
    assert loaded_by("import flows.window_loop") == []


@pytest.mark.parametrize(
    "overrides, error",
    [
        ([], None),  # a good local run on the built-in data: checked without torch
        (["gpus=0"], "gpus must be > 0"),
        (["delta=-1"], "delta must be in (0, gpus=1.0]"),
        (["model.name=vgg99"], "unknown model 'vgg99'"),
        (["executor=simulated", "executor.trace=/nonexistent"], "trace folder /nonexistent does not exist"),
        (["experiment=paper_example", "scheduler=uniform", "scheduler.retrain_config=best"], "unknown retraining configuration 'best'"),
    ],
)
def test_checking_a_config_loads_none_of_them(tmp_path, overrides, error):
    code = f"""
from pathlib import Path
from ekya.errors import EkyaError
from flows.config import check_run
from tests.flows.helpers import compose_config
try:
    check_run(compose_config(Path({str(tmp_path)!r}), *{overrides!r}))
    print("checked")
except EkyaError as error:
    print(f"error: {{error}}")
"""
    result = subprocess.run([sys.executable, "-c", code + _REPORT], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer, report = result.stdout.strip().splitlines()[-2:]
    assert answer == "checked" if error is None else error in answer, answer
    assert [name for name in json.loads(report) if name in HEAVY] == []


def cli(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m flows.window_loop ARGUMENTS``, its stores and outputs under ``tmp_path``, reporting the heavy
    packages it loaded on its last stdout line (it runs the module as ``-m`` does, then reports on exit)."""
    argv = ["flows.window_loop", *arguments, f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
            f"hydra.run.dir={tmp_path}/outputs", f"hydra.sweep.dir={tmp_path}/sweep"]
    code = f"""
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules))))
sys.argv = {argv!r}
runpy.run_module("flows.window_loop", run_name="__main__", alter_sys=True)
"""
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["gpus=0"], "error: gpus must be > 0, got 0.0"),
        (["dataset=nosuch"], "error: unknown dataset 'nosuch'; valid: "),
        (["scheduler.nosuch=1"], "error: unknown key 'scheduler.nosuch'; valid: extra_starts, name, passes, variant"),
        (["executor=simulated", "executor.trace=/nonexistent"], "error: trace folder /nonexistent does not exist"),
        (["delta=-1"], "error: delta must be in (0, gpus=1.0], got -1.0"),
        (["-m", "gpus=1,0"], "error: gpus=0: gpus must be > 0, got 0.0"),
    ],
)
def test_bad_input_on_the_command_line_is_one_line_and_exit_2_without_the_heavy_imports(tmp_path, arguments, message):
    result = cli(tmp_path, *arguments)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message), line
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "mlruns").exists()
