"""flows/runners.py: threads or Ray run the window loop's steps; bad runner settings are refused before MLflow starts."""

import json
import socket
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from ekya.errors import EkyaError
from flows.runners import build_task_runner, check_task_runner
from flows.window_loop import run_config
from tests.flows.helpers import compose_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["executor.task_runner=dask"], "executor.task_runner='dask'; valid: threads, ray"),
        (["executor.ray_address=auto"], "executor.ray_address=auto needs executor.task_runner=ray"),
        (["executor.task_runner=ray", "executor.ray_address=nowhere"], "executor.ray_address='nowhere'; valid: host:port"),
    ],
)
def test_bad_runner_settings_are_one_line(tmp_path, overrides, message):
    with pytest.raises(EkyaError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        check_task_runner(compose_config(tmp_path, "experiment=paper_example", *overrides)["executor"])


def test_ray_for_the_local_executor_is_refused(tmp_path):
    with pytest.raises(EkyaError, match="executor.task_runner=ray runs executor=simulated's steps"):
        check_task_runner(compose_config(tmp_path, "executor.task_runner=ray")["executor"])


def test_a_ray_address_that_does_not_answer_is_refused_before_mlflow_or_ray_start(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    config = compose_config(tmp_path, "experiment=paper_example", "executor.task_runner=ray", f"executor.ray_address={address}")
    with pytest.raises(EkyaError, match=f"^executor.ray_address={address}: no Ray cluster answers there .*valid: the address of a running Ray head"):
        run_config(config)
    assert not (tmp_path / "mlruns").exists()  # nothing written to MLflow
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


def test_threads_is_the_default_runner(tmp_path):
    runner = build_task_runner(compose_config(tmp_path, "experiment=paper_example"))
    assert type(runner).__name__ == "ThreadPoolTaskRunner"


def window_records(tracking_uri, experiment, tmp_path):
    client = MlflowClient(tracking_uri=tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    path = client.download_artifacts(run.info.run_id, "windows/0/schedule.json", str(tmp_path))
    record = json.loads(open(path).read())
    return [(segment["start_seconds"], segment["end_seconds"],
             {name: (part["retrain_config"], part["train_share"], part["inference_config"], part["inference_share"])
              for name, part in segment["streams"].items()})
            for segment in record["segments"]], run.data.metrics["summary/accuracy_mean"]


@pytest.mark.slow
def test_a_local_ray_with_two_cpus_decides_as_the_threads_do(tmp_path, capsys):
    """A 2-stream simulated window (the paper's example) on threads, then on a local Ray with 2 CPUs: the same decisions."""
    import ray

    results, seconds = {}, {}
    try:
        for runner in ("threads", "ray"):
            folder = tmp_path / runner
            config = compose_config(folder, "experiment=paper_example", "scheduler=thief", "windows=1", "executor.workers=2",
                                    f"executor.task_runner={runner}", "executor.placement=per_gpu")
            started = time.perf_counter()
            run_config(config)
            seconds[runner] = time.perf_counter() - started
            results[runner] = window_records(config["tracking"]["uri"], config["tracking"]["experiment"], folder)
            if runner == "ray":
                assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2.0
    finally:
        if "ray" in sys.modules:
            ray.shutdown()
    assert results["ray"] == results["threads"]
    with capsys.disabled():
        print(f"\none window, paper example: threads {seconds['threads']:.1f} s, ray {seconds['ray']:.1f} s (Ray's start included); "
              f"decisions {results['ray'][0]}")


def test_a_job_asks_ray_for_its_gpu_share_when_the_cluster_has_gpus(monkeypatch):
    from types import SimpleNamespace

    from prefect_ray.context import RemoteOptionsContext

    from flows.runners import gpu_share

    gpus = {"GPU": 2.0}
    monkeypatch.setitem(sys.modules, "ray", SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: gpus))
    with gpu_share(0.75):
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 0.75}
    with gpu_share(1.5):  # one job, one GPU
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 1.0}
    gpus.clear()
    with gpu_share(0.75):  # no GPUs in the cluster: asking would never schedule
        assert RemoteOptionsContext.get().current_remote_options == {}
