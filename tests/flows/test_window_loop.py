"""The window loop end to end: Prefect flow, MLflow run, artifacts, bad input from the command line."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from ekya.errors import EkyaError
from flows.window_loop import logged_run, run_config, window_loop
from tests.flows.helpers import PROJECT_ROOT, compose_config


def only_run(tracking_uri, experiment):
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client, (client.search_runs([found.experiment_id]) if found else [])


def test_paper_example_logs_metrics_schedules_and_plots(tmp_path):
    config = compose_config(tmp_path, "experiment=paper_example", "scheduler=uniform")
    summary = window_loop(config)
    assert 100 * summary["summary/accuracy_mean"] == pytest.approx(56.09, abs=0.01)

    client, runs = only_run(config["tracking"]["uri"], "paper_example")
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.params["scheduler.name"] == "uniform"
    assert run.data.params["scheduler.retrain_config"] == "high"
    assert run.data.params["resolved.gpus"] == "3.0"
    assert run.data.tags["scheduler"] == "uniform"
    history = client.get_metric_history(run.info.run_id, "accuracy/mean")
    assert [m.step for m in history] == [0, 1]
    assert [round(100 * m.value, 2) for m in history] == [47.29, 64.89]
    for key in ("accuracy/A", "accuracy/B", "estimated_accuracy/mean", "gpu_seconds/train", "gpu_seconds/inference",
                "gpu_seconds/overhead", "schedule_seconds", "schedule_seconds_total", "summary/accuracy_mean"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/allocation.png", "plots/accuracy.png"}
    local = client.download_artifacts(run.info.run_id, "windows/0/schedule.json", str(tmp_path))
    record = json.loads(open(local).read())
    assert record["window"] == 0
    assert record["streams"]["A"]["retrained"] == "Cfg1"
    assert record["segments"][0]["streams"]["B"]["train_share"] == pytest.approx(0.75)


def test_plain_steps_log_the_same_run_without_a_flow(tmp_path, capsys):
    """Many runs in one process (flows.reproduce): the same steps as plain calls, optionally quiet and without plots."""
    config = compose_config(tmp_path, "experiment=paper_example", "scheduler=thief")
    summary = logged_run(config, verbose=False, plots=False)
    assert capsys.readouterr().out == ""
    client, (run,) = only_run(config["tracking"]["uri"], "paper_example")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["summary/accuracy_mean"] == summary["summary/accuracy_mean"] == window_loop(config)["summary/accuracy_mean"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "accuracy/mean")] == [0, 1]
    assert not client.list_artifacts(run.info.run_id, "plots")
    assert {a.path for a in client.list_artifacts(run.info.run_id, "windows")} == {"windows/0", "windows/1"}


def test_error_inside_a_run_marks_it_failed(tmp_path):
    config = compose_config(tmp_path, "experiment=paper_example", "scheduler=optimal", "scheduler.max_search_size=1")
    with pytest.raises(EkyaError, match="too large"):
        window_loop(config)
    _, runs = only_run(config["tracking"]["uri"], "paper_example")
    assert [r.info.status for r in runs] == ["FAILED"]


def cli(tmp_path, *overrides, multirun=False):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run(
        [sys.executable, "-m", "flows.window_loop", *(["-m"] if multirun else []),
         f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"hydra.run.dir={tmp_path}/outputs", *overrides],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600,
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["gpus=0"], "gpus must be > 0, got 0"),
        (["delta=5"], "delta must be in (0, gpus=3.0], got 5"),
        (["streams=7"], "streams=7 but the dataset has 2 streams"),
        (["scheduler=uniform", "scheduler.retrain_config=best"], "unknown retraining configuration 'best'; valid: high, low, Cfg1, Cfg2"),
        (["executor.trace=/nonexistent"], "trace folder /nonexistent does not exist"),
        (["scheduler.passes=0"], "passes must be >= 1, got 0"),
        (["scheduler.variant=magic"], "scheduler 'thief': unknown variant 'magic'; valid: improved, paper"),
        (["executor.scaling=fast"], "executor.scaling='fast'; valid: linear, measured"),
        (["executor.scaling=measured"], "throughput.csv does not exist"),
        (["log_level=loud"], "log_level='loud'; valid: info, debug"),
        (["cache.size=-1"], "cache.size must be a whole number of models >= 0 (0: no cache), got -1"),
        (["cache.eviction=random"], "unknown cache.eviction 'random'; valid: lru, fifo"),
        (["cache.size=2", "cache.scope=all"], "cache.scope=all needs executor=local"),
        (["drift.threshold=150"], "drift.threshold must be a number of accuracy points in [0, 100], got 150"),
        (["drift.enabled=maybe"], "drift.enabled must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(EkyaError) as error:
        run_config(compose_config(tmp_path, "experiment=paper_example", *overrides))
    assert message in str(error.value)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # nothing half-written


def test_bad_value_on_the_command_line_exits_2_without_traceback(tmp_path):
    result = cli(tmp_path, "experiment=paper_example", "gpus=0")
    assert result.returncode == 2
    assert "error: gpus must be > 0, got 0" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.parametrize("override, message", [
    ("cache.size=-1", "error: cache.size must be a whole number of models >= 0 (0: no cache), got -1"),
    ("drift.threshold=-5", "error: drift.threshold must be a number of accuracy points in [0, 100], got -5"),
])
def test_bad_reuse_settings_exit_2_with_one_line(tmp_path, override, message):
    result = cli(tmp_path, "experiment=paper_example", override)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_unknown_scheduler_lists_the_valid_ones(tmp_path):
    result = cli(tmp_path, "experiment=paper_example", "scheduler=magic")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown scheduler 'magic'; valid: fair, fixed_config, fixed_res, no_retrain, optimal, thief, uniform"]
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("level", ["info", "debug"])
def test_the_console_shows_a_line_per_window_and_prefects_lines_only_at_debug(tmp_path, level):
    result = cli(tmp_path, "experiment=paper_example", f"log_level={level}")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    if level == "info":
        lines = output.strip().splitlines()
        assert len(lines) == 4, output  # the header, a line per window, the summary
        assert lines[1].startswith("window   0") and lines[2].startswith("window   1") and lines[3].startswith("mean accuracy")
    else:
        assert "Task run 'play-" in output and "Finished in state Completed()" in output
        assert "Beginning flow run" in output


@pytest.mark.slow
def test_multirun_makes_one_parent_and_a_child_per_point(tmp_path):
    result = cli(tmp_path, "experiment=paper_example", "scheduler=thief,uniform", "gpus=2,3",
                 f"hydra.sweep.dir={tmp_path}/sweep", multirun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = only_run(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "paper_example")
    parents = [r for r in runs if r.data.tags.get("ekya.sweep_parent") == "true"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(children) == 4
    assert parents[0].info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {(r.data.params["scheduler.name"], r.data.params["gpus"]) for r in children} == {
        ("thief", "2"), ("thief", "3"), ("uniform", "2"), ("uniform", "3")}


def tiny_local(*extra):
    return ("executor=local", "dataset.num_streams=2", "dataset.num_windows=2", "dataset.crops_per_window=80",
            "dataset.frames_per_window=16", "dataset.holdout_streams=1", "dataset.holdout_windows=1", "model=shufflenet_v2_x0_5",
            "model.base_epochs=1", "retrain_space.configs=[{train_layers: 1, hidden_size: 64, subsample: 1.0, epochs: [1, 2]}]",
            "inference_space.configs=[{sampling_rate: [1.0, 0.5]}]", "profiler.sample_fraction=0.25", *extra)


@pytest.mark.slow
def test_local_run_logs_measured_and_estimated_accuracy_and_class_mix(tmp_path):
    config = compose_config(tmp_path, *tiny_local())
    summary = window_loop(config)
    assert 0 <= summary["summary/accuracy_mean"] <= 1
    client, runs = only_run(config["tracking"]["uri"], "ekya")
    (run,) = runs
    assert run.info.status == "FINISHED" and run.data.tags["executor"] == "local"
    for key in ("accuracy/cam0", "estimated_accuracy/cam0", "gpu_seconds/profile", "gpu_seconds/labeling"):
        assert key in run.data.metrics, key
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {"plots/class_mix.png", "plots/accuracy.png"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.name=vgg99"], "unknown model 'vgg99'; valid: resnet18, mobilenet_v2, shufflenet_v2_x0_5"),
        (["retrain_space.configs=[{train_layers: 1, hidden_size: 64, subsample: 1.5, epochs: 1}]"], "subsample must be in (0, 1]"),
        (["retrain_space.configs=[{train_layers: 1, hidden_size: 64, subsample: 0.5, epochs: 0}]"], "epochs must be"),
        (["retrain_space.configs=[{train_layers: 1, hidden_size: 64, subsample: 0.5, epochs: 1, batch_size: 0}]"], "batch_size must be"),
        (["dataset.num_streams=0"], "num_streams"),
        (["executor.cost=free"], "executor.cost='free'; valid: reference, calibrated, measured"),
        (["inference_space.configs=[{sampling_rate: 1.0, resolution: 20}]"], "resolution=20"),
    ],
)
def test_bad_local_settings_are_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(EkyaError) as error:
        run_config(compose_config(tmp_path, *overrides))
    assert message in str(error.value)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
    assert not (tmp_path / "cache" / "models").exists()  # nothing trained, nothing half-written


# ------------------------------------------------------------------ resume: a killed or failed run continues after its last window

#: Per-window metrics that are the scheduler's wall-clock times (they differ between any two runs).
WALL_CLOCK = ("schedule_seconds", "schedule_seconds_total")


def resumable(tmp_path, *overrides):
    """The simulated config of a 3-stream, 5-window drifting trace (written once under ``tmp_path``), with estimate noise."""
    from tests.helpers import drifting_trace

    trace = tmp_path / "trace"
    if not trace.exists():
        drifting_trace(trace)
    return compose_config(tmp_path, "executor=simulated", f"executor.trace={trace}", "profiler.noise_std=2", *overrides)


def metric_histories(tracking_uri, run_id):
    """Every metric of a run as {key: [(step, value), ...]}, the wall-clock ones left out."""
    client = MlflowClient(tracking_uri=tracking_uri)
    keys = client.get_run(run_id).data.metrics
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys if key not in WALL_CLOCK}


def uninterrupted(tmp_path):
    """The metrics of the same config run without a stop, in a store of its own."""
    config = resumable(tmp_path / "uninterrupted")
    logged_run(config, verbose=False, plots=False)
    (run,) = only_run(config["tracking"]["uri"], "ekya")[1]
    return metric_histories(config["tracking"]["uri"], run.info.run_id)


def test_a_failed_run_resumes_in_the_same_mlflow_run_without_playing_a_finished_window_again(tmp_path, monkeypatch):
    from ekya.execution.simulated import SimulatedRun

    config = resumable(tmp_path)
    profile, played = SimulatedRun.profile, []

    def failing(self, window, stream):
        if window == 2:
            raise RuntimeError("out of memory")
        played.append(window)
        return profile(self, window, stream)

    monkeypatch.setattr(SimulatedRun, "profile", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        logged_run(config, verbose=False, plots=False)
    (failed,) = only_run(config["tracking"]["uri"], "ekya")[1]
    assert failed.info.status == "FAILED" and failed.data.tags["ekya.error"] == "RuntimeError: out of memory"
    assert (tmp_path / "cache" / "resume" / failed.info.run_id / "window-1").is_dir()

    def counting(self, window, stream):
        played.append(window)
        return profile(self, window, stream)

    monkeypatch.setattr(SimulatedRun, "profile", counting)
    played.clear()
    summary = logged_run({**config, "resume": True}, verbose=False, plots=True)
    assert sorted(set(played)) == [2, 3, 4]  # windows 0 and 1 are not played again
    client, (run,) = only_run(config["tracking"]["uri"], "ekya")
    assert run.info.run_id == failed.info.run_id and run.info.status == "FINISHED"
    assert "ekya.error" not in run.data.tags and run.data.tags["ekya.resumed"] == "1"
    assert metric_histories(config["tracking"]["uri"], run.info.run_id) == uninterrupted(tmp_path)
    assert summary["summary/accuracy_mean"] == run.data.metrics["summary/accuracy_mean"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "accuracy/mean")] == [0, 1, 2, 3, 4]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "windows")} == {f"windows/{k}" for k in range(5)}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {"plots/allocation.png", "plots/accuracy.png"}
    assert not (tmp_path / "cache" / "resume" / run.info.run_id).exists()  # FINISHED: its checkpoint is gone


def test_a_window_checkpointed_but_not_logged_is_logged_when_the_run_resumes(tmp_path, monkeypatch):
    """The process died between a window's checkpoint and its MLflow logging: resuming logs it, from the checkpoint."""
    from ekya.tracking.window_log import WindowLog

    config = resumable(tmp_path)
    window_done = WindowLog.window_done

    def dying(self, result):
        if result.window == 1:
            raise KeyboardInterrupt  # after window 1's checkpoint, before its metrics
        window_done(self, result)

    monkeypatch.setattr(WindowLog, "window_done", dying)
    with pytest.raises(KeyboardInterrupt):
        logged_run(config, verbose=False, plots=False)
    monkeypatch.setattr(WindowLog, "window_done", window_done)
    (failed,) = only_run(config["tracking"]["uri"], "ekya")[1]
    assert [m.step for m in MlflowClient(config["tracking"]["uri"]).get_metric_history(failed.info.run_id, "accuracy/mean")] == [0]
    logged_run({**config, "resume": failed.info.run_id}, verbose=False, plots=False)
    assert metric_histories(config["tracking"]["uri"], failed.info.run_id) == uninterrupted(tmp_path)


def test_resume_true_without_an_unfinished_run_starts_one_and_after_a_finished_one_skips(tmp_path, capsys):
    config = resumable(tmp_path, "resume=true", "windows=2")
    first = run_config(config)
    (run,) = only_run(config["tracking"]["uri"], "ekya")[1]
    capsys.readouterr()
    assert run_config(config) == {"summary/accuracy_mean": first["summary/accuracy_mean"]}
    assert capsys.readouterr().out == f"skipped: run {run.info.run_id} of this config FINISHED already (resume=true)\n"
    assert len(only_run(config["tracking"]["uri"], "ekya")[1]) == 1


def failed_run(tmp_path, *overrides):
    """A FAILED run of :func:`resumable`'s config (after its window 0); its id."""
    from ekya.execution.simulated import SimulatedRun

    config = resumable(tmp_path, *overrides)
    profile = SimulatedRun.profile

    def failing(self, window, stream):
        if window == 1:
            raise RuntimeError("stop")
        return profile(self, window, stream)

    SimulatedRun.profile = failing
    try:
        with pytest.raises(RuntimeError):
            logged_run(config, verbose=False, plots=False)
    finally:
        SimulatedRun.profile = profile
    (run,) = only_run(config["tracking"]["uri"], "ekya")[1]
    return run.info.run_id


@pytest.mark.parametrize(
    "resume, overrides, message",
    [
        ("0123456789abcdef0123456789abcdef", [], "resume=0123456789abcdef0123456789abcdef: no such run in sqlite:///"),
        ("{failed}", ["gpus=3"], "resume={failed}: the run has another config (gpus=None there, 3 here); resume it with the same config"),
        ("{failed}", ["tracking.experiment=other"], "resume={failed}: the run is in experiment 'ekya', not 'other' (tracking.experiment)"),
        ("{finished}", [], "resume={finished}: the run FINISHED already; valid: true (the newest unfinished run of this config), false"),
        ("{lost}", [], "resume={lost}: run {lost} logged window(s) 0, but no checkpoint of them is under {cache}/resume/{lost} (paths.cache_dir)"),
    ],
    ids=["unknown-id", "other-config", "other-experiment", "finished", "checkpoint-lost"],
)
def test_bad_resume_values_are_refused_before_anything_is_written(tmp_path, resume, overrides, message):
    ids = {"cache": tmp_path / "cache"}
    if "{failed}" in resume or "{lost}" in resume:
        ids["failed"] = ids["lost"] = failed_run(tmp_path)
    if "{lost}" in resume:
        shutil.rmtree(tmp_path / "cache" / "resume" / ids["lost"])
    if "{finished}" in resume:
        ids["finished"] = failed_run(tmp_path)
        logged_run({**resumable(tmp_path), "resume": ids["finished"]}, verbose=False, plots=False)
    config = resumable(tmp_path, f"resume={resume.format(**ids)}", *overrides)
    before = [(r.info.run_id, r.info.status, r.info.end_time) for r in only_run(config["tracking"]["uri"], "ekya")[1]]
    with pytest.raises(EkyaError) as error:
        run_config(config)
    assert message.format(**ids) in str(error.value)
    assert [(r.info.run_id, r.info.status, r.info.end_time) for r in only_run(config["tracking"]["uri"], "ekya")[1]] == before


def test_a_bad_resume_value_on_the_command_line_exits_2_without_traceback_or_store(tmp_path):
    result = cli(tmp_path, "experiment=paper_example", "resume=nosuch")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: resume=nosuch: no such run (the MLflow store sqlite:///{tmp_path}/mlruns/mlflow.db does not exist yet); valid: true "
        "(the newest unfinished run of this config), false (a new run) or the id of a FAILED or KILLED run of this config"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
