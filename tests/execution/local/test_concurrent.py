"""executor.jobs=concurrent on the CPU: a local window played by job processes side by side, logged like any run."""

import json

import pytest
from mlflow.tracking import MlflowClient

from flows.window_loop import logged_run
from tests.flows.helpers import compose_config
from tests.flows.test_window_loop import tiny_local


@pytest.mark.slow
def test_a_local_window_runs_its_jobs_as_processes_and_the_retrained_model_serves(tmp_path):
    config = compose_config(tmp_path, *tiny_local("executor.jobs=concurrent", "dataset.window_seconds=90", "windows=1",
                                                  "streams=1", "scheduler=fair"))
    summary = logged_run(config, verbose=False, plots=False)
    assert 0 < summary["summary/accuracy_mean"] <= 1
    client = MlflowClient(tracking_uri=config["tracking"]["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("ekya").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["placement/repairs"] == 0
    record = json.loads(open(client.download_artifacts(run.info.run_id, "windows/1/schedule.json", str(tmp_path))).read())
    assert sum(s["end_seconds"] - s["start_seconds"] for s in record["segments"]) == pytest.approx(90.0)
    first = record["segments"][0]["streams"]
    assert all(part["inference_gpu"] == 0 for part in first.values())  # every job on the one device
    # Fair: training and inference half each; once the job ends, inference restarts with the whole device.
    assert record["streams"]["cam0"]["retrained"] == "c00" and record["streams"]["cam0"]["finish_seconds"] < 90
    assert record["decisions"] == 2 and record["segments"][-1]["streams"]["cam0"]["inference_share"] == pytest.approx(1.0)
    statuses = list((tmp_path / "cache" / "jobs" / "window-1" / "jobs").glob("*.status.json"))
    assert {path.name.split(".")[0].split("-")[1] for path in statuses} == {"train", "inference"}
