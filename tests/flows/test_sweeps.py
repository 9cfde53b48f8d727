"""Multiruns from the command line: every sweep's parent run closes with its counts."""

import os
import subprocess
import sys
from unittest import mock

import pytest
from mlflow.tracking import MlflowClient

from flows.window_loop import logged_run
from tests.conftest import PAPER_EXAMPLE
from tests.flows.helpers import PROJECT_ROOT


def sweep_cli(tmp_path, *overrides, cwd=PROJECT_ROOT, timeout=900, trace=PAPER_EXAMPLE):
    """``python -m flows.window_loop -m`` on the paper example's trace (or another), MLflow under ``tmp_path``."""
    env = dict(os.environ, HYDRA_FULL_ERROR="0", PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "flows.window_loop", "-m", "executor=simulated", f"executor.trace={trace}",
         f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", *overrides],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout,
    )


def sweep_runs(tmp_path, experiment="ekya"):
    """(parents, children) of the store under ``tmp_path``."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    parents = [r for r in runs if r.data.tags.get("ekya.sweep_parent") == "true"]
    return parents, [r for r in runs if r not in parents]


def assert_closed_with_counts(parent, finished, failed):
    assert parent.info.status == ("FINISHED" if failed == 0 else "FAILED")
    assert parent.data.metrics["sweep/points"] == finished + failed
    assert parent.data.metrics["sweep/points_finished"] == finished
    assert parent.data.metrics["sweep/points_failed"] == failed
    assert parent.data.tags["ekya.points_finished"] == str(finished)


@pytest.mark.slow
@pytest.mark.parametrize("relative", [True, False], ids=["relative-sweep-dir", "absolute-sweep-dir"])
def test_the_parent_run_closes_with_its_counts(tmp_path, relative):
    # A relative folder (from the working directory, with ${now:} re-resolved by Hydra) or an absolute one.
    sweep_dir = "sweeps/${now:%H-%M-%S}" if relative else f"{tmp_path}/sweep"
    result = sweep_cli(tmp_path, "gpus=1,2", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,), children = sweep_runs(tmp_path)
    assert [r.info.status for r in children] == ["FINISHED", "FINISHED"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert parent.data.tags["ekya.sweep_dir"].startswith(str(tmp_path))
    assert_closed_with_counts(parent, finished=2, failed=0)


@pytest.mark.slow
def test_a_bad_point_refuses_the_sweep_before_anything_runs(tmp_path):
    result = sweep_cli(tmp_path, "gpus=1,0,2", "scheduler=thief,uniform", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: gpus=0 scheduler=thief: gpus must be > 0, got 0.0",
                     "error: gpus=0 scheduler=uniform: gpus must be > 0, got 0.0"], result.stderr[-3000:]
    assert "Flow run" not in result.stdout + result.stderr  # nothing ran
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_continue_on_error_records_the_bad_point_and_runs_the_others(tmp_path):
    result = sweep_cli(tmp_path, "gpus=1,0,2", "sweep.continue_on_error=true", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "error: gpus=0: gpus must be > 0, got 0.0" in result.stderr.splitlines()
    (parent,), children = sweep_runs(tmp_path)
    by_gpus = {r.data.params["gpus"]: r for r in children}
    assert {gpus: r.info.status for gpus, r in by_gpus.items()} == {"1": "FINISHED", "0": "FAILED", "2": "FINISHED"}
    assert by_gpus["0"].data.tags["ekya.error"] == "gpus must be > 0, got 0.0"
    assert "summary/accuracy_mean" in by_gpus["2"].data.metrics
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert_closed_with_counts(parent, finished=2, failed=1)


@pytest.mark.slow
def test_a_killed_sweep_resumes_its_unfinished_points_and_skips_the_finished_ones(tmp_path):
    from tests.flows.test_interrupts import start_slow_run, wait_for_line
    from tests.flows.test_window_loop import metric_histories, resumable
    from tests.helpers import drifting_trace

    trace = drifting_trace(tmp_path / "trace")
    points = ("profiler.noise_std=2", "gpus=1,2,3")
    process = start_slow_run(tmp_path, 0.5, *points, f"hydra.sweep.dir={tmp_path}/sweep", trace=trace, multirun=True)
    try:
        wait_for_line(process.stdout, "mean accuracy")  # point gpus=1 finished
        wait_for_line(process.stdout, "window   1")  # point gpus=2 is in its window 2
        process.kill()
        process.wait(timeout=10)
    finally:
        process.kill()
    _, killed = sweep_runs(tmp_path)
    by_gpus = {r.data.params["gpus"]: r for r in killed}
    assert {gpus: r.info.status for gpus, r in by_gpus.items()} == {"1": "FINISHED", "2": "RUNNING"}

    result = sweep_cli(tmp_path, f"paths.cache_dir={tmp_path}/cache", *points, "resume=true", f"hydra.sweep.dir={tmp_path}/sweep2",
                       trace=trace)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipped: gpus=1: run {by_gpus['1'].info.run_id} of this config FINISHED already (resume=true)" in result.stdout.splitlines()
    assert f"resuming run {by_gpus['2'].info.run_id} after window 1 (2 finished window(s) restored from its checkpoint)" in result.stdout
    parents, children = sweep_runs(tmp_path)
    assert {r.data.params["gpus"]: (r.info.run_id, r.info.status) for r in children} == {
        "1": (by_gpus["1"].info.run_id, "FINISHED"), "2": (by_gpus["2"].info.run_id, "FINISHED"), "3": (mock.ANY, "FINISHED")}
    (parent,) = [p for p in parents if p.data.tags["ekya.sweep_dir"] == str(tmp_path / "sweep2")]
    assert_closed_with_counts(parent, finished=2, failed=0)  # the resumed point and the new one; the skipped one stays where it was
    for gpus in ("2", "3"):
        reference = resumable(tmp_path / f"uninterrupted-{gpus}", f"gpus={gpus}")
        logged_run(reference, verbose=False, plots=False)
        _, (run,) = sweep_runs(tmp_path / f"uninterrupted-{gpus}")
        expected = metric_histories(reference["tracking"]["uri"], run.info.run_id)
        resumed = [r for r in children if r.data.params["gpus"] == gpus][0]
        assert metric_histories(f"sqlite:///{tmp_path}/mlruns/mlflow.db", resumed.info.run_id) == expected
