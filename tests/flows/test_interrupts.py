"""Ctrl-C and SIGTERM stop a run within seconds, with one line, its MLflow run marked KILLED."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import PAPER_EXAMPLE
from tests.flows.helpers import PROJECT_ROOT


def start_slow_run(tmp_path, seconds, *overrides, trace=PAPER_EXAMPLE, multirun=False):
    """The paper example (or another trace), simulated, each profile step ``seconds`` long, in the background."""
    env = dict(os.environ, HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flows.slow_cli", str(seconds), *(["-m"] if multirun else []), "executor=simulated", f"executor.trace={trace}",
         f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"paths.cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/outputs",
         *overrides],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def wait_for_line(stream, prefix, timeout=600):
    """Lines of ``stream`` up to the first one starting with ``prefix``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line {prefix!r} in {lines}")


def runs(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    return client.search_runs([client.get_experiment_by_name("ekya").experiment_id])


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_the_run_at_once_and_marks_it_killed(tmp_path, signum, status):
    process = start_slow_run(tmp_path, 30)
    try:
        wait_for_line(process.stderr, "profile 0")  # inside window 0, in a Prefect task
        sent = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert took < 5, took
    assert process.returncode == status
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED"
    assert run.data.tags["ekya.killed"] == f"interrupted by {signal.Signals(signum).name}"
    assert "Traceback" not in out + err
    remaining = [line for line in err.splitlines() if not line.startswith("profile ")]
    assert remaining == [f"interrupted: run {run.info.run_id} marked KILLED"]
    assert "metrics" not in run.data.metrics and not run.data.metrics  # window 0 was discarded


def children(pid):
    """Pids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        if entry.isdigit() and int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def gone(pid, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_takes_prefects_server_along_and_the_next_start_marks_the_run_killed(tmp_path):
    from ekya.tracking.mlflow_logging import RunLogger

    process = start_slow_run(tmp_path, 30)
    try:
        wait_for_line(process.stderr, "profile 0")
        (server,) = [pid for pid in children(process.pid) if b"prefect.server.api.server" in open(f"/proc/{pid}/cmdline", "rb").read()]
        process.kill()
        process.wait(timeout=10)
    finally:
        process.kill()
    assert gone(server, within=10), "Prefect's temporary server outlived its run"
    (run,) = runs(tmp_path)
    assert run.info.status == "RUNNING"
    RunLogger(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "other", "next start", {}).finish()
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED"
    assert run.data.tags["ekya.killed"].startswith(f"process {process.pid} on ")


@pytest.mark.slow
def test_a_run_killed_with_kill_9_resumes_in_the_same_run_after_its_last_window(tmp_path):
    from tests.flows.test_window_loop import metric_histories, uninterrupted
    from tests.helpers import drifting_trace

    trace = drifting_trace(tmp_path / "trace")
    process = start_slow_run(tmp_path, 1, "profiler.noise_std=2", trace=trace)
    try:
        wait_for_line(process.stdout, "window   0")  # window 0 is checkpointed and logged; window 1 is under way
        process.kill()
        process.wait(timeout=10)
    finally:
        process.kill()
    (killed,) = runs(tmp_path)
    assert killed.info.status == "RUNNING"  # its process is gone: the next start sees it
    resumed = start_slow_run(tmp_path, 0, "profiler.noise_std=2", "resume=true", trace=trace)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert sorted({int(line.split()[1]) for line in err.splitlines() if line.startswith("profile ")}) == [1, 2, 3, 4]
    lines = out.strip().splitlines()
    assert lines[1] == f"resuming run {killed.info.run_id} after window 0 (1 finished window(s) restored from its checkpoint)"
    assert [line.split()[1] for line in lines[2:-1]] == ["1", "2", "3", "4"]
    (run,) = runs(tmp_path)
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert "ekya.killed" not in run.data.tags and run.data.tags["ekya.pid"] == str(resumed.pid)
    assert metric_histories(f"sqlite:///{tmp_path}/mlruns/mlflow.db", run.info.run_id) == uninterrupted(tmp_path)
