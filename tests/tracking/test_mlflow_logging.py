"""Runs name their process; RUNNING runs whose process is gone are marked KILLED by the next start."""

import os
import socket
import subprocess

from mlflow.tracking import MlflowClient

from ekya.tracking.mlflow_logging import RunLogger, mark_orphans_killed, process_start


def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_runs_are_tagged_with_host_and_pid_and_orphans_are_marked_killed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    finished = RunLogger(uri, "e", "finished", {})
    finished.finish()
    tags = MlflowClient(uri).get_run(finished.run_id).data.tags
    assert tags["ekya.host"] == socket.gethostname() and tags["ekya.pid"] == str(os.getpid())
    assert tags["ekya.pid_start"] == process_start(os.getpid())

    orphan, alive, elsewhere, reused = (RunLogger(uri, "e", name, {}) for name in ("orphan", "alive", "elsewhere", "reused"))
    client = MlflowClient(uri)
    gone = dead_pid()
    client.set_tag(orphan.run_id, "ekya.pid", str(gone))
    client.set_tag(elsewhere.run_id, "ekya.pid", str(gone))
    client.set_tag(elsewhere.run_id, "ekya.host", "another-host")
    client.set_tag(reused.run_id, "ekya.pid_start", "1")  # this pid, but another process's start time
    assert sorted(mark_orphans_killed(client)) == sorted([orphan.run_id, reused.run_id])
    status = {run.info.run_name: run.info.status for run in client.search_runs([client.get_experiment_by_name("e").experiment_id])}
    assert status == {"finished": "FINISHED", "orphan": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "reused": "KILLED"}
    assert client.get_run(orphan.run_id).data.tags["ekya.killed"].startswith(f"process {gone} on {socket.gethostname()} was gone")


def test_experiments_are_tagged_as_model_development_so_the_ui_opens_on_their_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    client.create_experiment("older")  # a store from before the tag
    RunLogger(uri, "new", "run", {}).finish()
    RunLogger(uri, "older", "run", {}).finish()
    for name in ("new", "older"):
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development"
