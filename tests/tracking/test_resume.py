"""Which run ``resume`` continues: the newest unfinished run of the same config, or a named one that may be resumed."""

import pytest
from mlflow.tracking import MlflowClient

from ekya.errors import EkyaError
from ekya.tracking.mlflow_logging import RunLogger
from ekya.tracking.resume import Resumption, config_differences, find_resumption
from tests.tracking.test_mlflow_logging import dead_pid

PARAMS = {"gpus": 2, "scheduler.name": "thief", "resume": False}


def started(uri, params=PARAMS, status=None, sweep_dir=None):
    """A run of ``params``, left RUNNING (None) or closed with ``status``; its id."""
    logger = RunLogger(uri, "e", "run", params, sweep_dir=sweep_dir)
    if status == "FAILED":
        logger.finish(failed=True)
    elif status == "FINISHED":
        logger.log_metrics({"summary/accuracy_mean": 0.5})
        logger.finish()
    return logger.run_id


def test_resume_true_takes_the_newest_run_of_the_config(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert find_resumption(uri, "e", PARAMS, True) == Resumption()  # no store yet: a new run, and none is created
    assert not (tmp_path / "mlflow.db").exists()
    older = started(uri, status="FAILED")
    assert find_resumption(uri, "e", PARAMS, True) == Resumption(older)
    started(uri, {**PARAMS, "gpus": 3}, status="FAILED")  # another config
    newer = started(uri, status="FAILED")
    assert find_resumption(uri, "e", {**PARAMS, "resume": True}, True) == Resumption(newer)
    finished = started(uri, status="FINISHED")
    assert find_resumption(uri, "e", PARAMS, True) == Resumption(finished, finished=True, summary={"summary/accuracy_mean": 0.5})
    assert find_resumption(uri, "other", PARAMS, True) == Resumption()
    assert find_resumption(uri, "e", PARAMS, False) == Resumption()


def test_a_running_run_is_resumed_only_when_its_process_on_this_host_is_gone(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    alive = started(uri)
    with pytest.raises(EkyaError, match=rf"resume={alive}: the run is still RUNNING \(process \d+ on .*\); valid: true"):
        find_resumption(uri, "e", PARAMS, alive)
    with pytest.raises(EkyaError, match=f"resume=true: run {alive}, the newest of this config, is still RUNNING"):
        find_resumption(uri, "e", PARAMS, True)
    client.set_tag(alive, "ekya.host", "elsewhere")
    with pytest.raises(EkyaError, match="is RUNNING on host elsewhere, whose processes this host cannot see"):
        find_resumption(uri, "e", PARAMS, alive)
    orphan = started(uri)
    client.set_tag(orphan, "ekya.pid", str(dead_pid()))
    assert find_resumption(uri, "e", PARAMS, orphan) == Resumption(orphan)
    assert find_resumption(uri, "e", PARAMS, True) == Resumption(orphan)


def test_a_reopened_run_runs_again_under_this_process(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    killed = started(uri, status="FAILED")
    client = MlflowClient(uri)
    client.set_tag(killed, "ekya.error", "RuntimeError: boom")
    client.set_tag(killed, "ekya.pid", str(dead_pid()))
    logger = RunLogger(uri, "e", "run", {"gpus": 99}, resume_run_id=killed)  # params are not logged again
    run = client.get_run(killed)
    assert run.info.status == "RUNNING" and "ekya.error" not in run.data.tags and run.data.tags["ekya.resumed"] == "1"
    assert run.data.params["gpus"] == "2" and run.data.tags["ekya.pid"] != "0"
    logger.finish()
    assert client.get_run(killed).info.status == "FINISHED"


def test_a_sweep_parent_is_not_a_run_to_resume(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    child = started(uri, status="FAILED", sweep_dir=str(tmp_path / "sweep"))
    parent = MlflowClient(uri).get_run(child).data.tags["mlflow.parentRunId"]
    with pytest.raises(EkyaError, match=f"resume={parent}: the run is a sweep's parent; resume the sweep's points with -m and resume=true"):
        find_resumption(uri, "e", PARAMS, parent)
    assert find_resumption(uri, "e", PARAMS, True) == Resumption(child)


def test_config_differences_name_each_key_with_both_values():
    logged = {"gpus": "2", "seed": "0", "resolved.gpus": "2.0", "resume": "True"}
    assert config_differences(logged, {"gpus": 3, "seed": 0, "delta": 0.1, "resume": False}) == [
        "delta=(unset) there, 0.1 here", "gpus=2 there, 3 here"]
