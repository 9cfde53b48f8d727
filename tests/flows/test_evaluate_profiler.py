"""The profiler-evaluation flow end to end: Hydra config -> Prefect flow -> one MLflow run with metrics and plot."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from ekya.errors import EkyaError
from ekya.profiling.reference_costs import ReferenceCosts
from ekya.tracking.mlflow_logging import RunLogger
from ekya_studies.profiler_fidelity import log_results
from flows.config import build_profiler_evaluation
from flows.evaluate_profiler import evaluate_profiler
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT

TINY = [
    "dataset.num_streams=2", "dataset.num_windows=2", "dataset.crops_per_window=60", "dataset.frames_per_window=12",
    "dataset.holdout_streams=1", "dataset.holdout_windows=1",
    "model=shufflenet_v2_x0_5", "model.base_epochs=1", "model.hidden_size=16",
    "retrain_space.configs=[{train_layers:1,hidden_size:[16,32],subsample:0.5,epochs:1}]",
    "profiler.sample_fraction=0.5", "epochs=[1,2]", "progress=false",
]


def compose_evaluation_config(tmp_path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="evaluate_profiler", overrides=[
            f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"paths.cache_dir={tmp_path}/cache", *TINY, *overrides,
        ])
    return OmegaConf.to_container(cfg, resolve=True)


def logged_run(config: dict):
    client = MlflowClient(tracking_uri=config["tracking"]["uri"])
    experiment = client.get_experiment_by_name("evaluate_profiler")
    [run] = client.search_runs([experiment.experiment_id])
    return client, run


def check_logged(tmp_path, config: dict, metrics: dict) -> None:
    client, run = logged_run(config)
    assert run.info.status == "FINISHED"
    logged = run.data.metrics
    for name in ("abs_error_median", "abs_error_p90", "bias"):
        for prefix in ("profiler", "profiler/holdout"):
            for suffix in ("", "/epochs_1", "/epochs_2"):
                assert logged[f"{prefix}/{name}{suffix}"] == pytest.approx(metrics[f"{prefix}/{name}{suffix}"])
    for name in ("profiler/cost_share_of_window", "profiler/cost_ratio_vs_exhaustive"):
        assert logged[name] == pytest.approx(metrics[name]) and logged[name] > 0

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"profiler_errors.csv", "plots/profiler_error.png"} <= artifacts
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "profiler_errors.csv", str(tmp_path)))
    assert len(table) == 2 * 1 * 2 * 2  # streams x window 1 x configs x epochs
    assert sorted(table.epochs.unique()) == [1, 2]
    assert sorted(table.config.unique()) == ["c00", "c01"]


def test_tiny_evaluation_logs_metrics_table_and_plot(tmp_path):
    config = compose_evaluation_config(tmp_path)
    evaluation = build_profiler_evaluation(config)
    table = evaluation.run()
    # cost=reference: every full training costs the table's rates times its work, on any machine.
    rates = ReferenceCosts.shipped("cpu").training_rates("shufflenet_v2_x0_5", 32, 1)
    pool = 60 - evaluation.profiler.split_sizes(60)[0]
    samples = round(0.5 * pool)
    assert table["gpu_seconds"].tolist() == pytest.approx([rates.frozen * samples + rates.train * samples * epochs
                                                            for epochs in table["epochs"]])
    # The measured seconds of the same cells (nothing is trained again).
    measured = build_profiler_evaluation(compose_evaluation_config(tmp_path, "cost=measured")).run()
    assert measured[["estimated_accuracy", "accuracy_holdout"]].equals(table[["estimated_accuracy", "accuracy_holdout"]])
    assert not measured["gpu_seconds"].equals(table["gpu_seconds"])
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], "tiny", {"epochs": "[1, 2]"}) as logger:
        metrics = log_results(logger, table, evaluation.source.window_seconds, float(config["gpus"]))
    check_logged(tmp_path, config, metrics)


@pytest.mark.slow
def test_flow_logs_one_run_and_prints_the_targets(tmp_path, capsys):
    config = compose_evaluation_config(tmp_path)
    metrics = evaluate_profiler(config)
    check_logged(tmp_path, config, metrics)
    _, run = logged_run(config)
    assert run.data.params["epochs"] == "[1, 2]" and run.data.tags["curve_family"] == "power"
    printed = capsys.readouterr().out
    assert "median |error| vs full retraining, points" in printed and ">= 100" in printed


@pytest.mark.parametrize("override, message", [
    ("epochs=[]", "epochs must be a non-empty list"), ("epochs=[0]", "epochs must be ints >= 1"),
    ("epochs=[5,-1]", "epochs must be ints >= 1"), ("epochs=[15,5]", "epochs must be strictly increasing"),
    ("epochs=[5,5]", "epochs must be strictly increasing"),
    ("profiler.sample_fraction=0", r"profiler.sample_fraction must be a fraction in \(0, 1\]"),
    ("profiler.sample_fraction=1.5", r"profiler.sample_fraction must be a fraction in \(0, 1\]"),
    ("profiler.validation_size=0", "profiler.validation_size must be an integer >= 1"),
    ("cost=calibrated", "cost='calibrated'; valid here: reference, measured"), ("cost=cheap", "cost='cheap'; valid: reference"),
    # 60-crop windows, a sample of half of them: at most 30 crops are left to validate on.
    ("profiler.validation_size=31", r"profiler.validation_size=31 .*dataset.crops_per_window=60.*valid: validation_size <= 30"),
])
def test_bad_input_is_refused_before_anything_runs(tmp_path, override, message):
    config = compose_evaluation_config(tmp_path, override)
    with pytest.raises(EkyaError, match=message):
        build_profiler_evaluation(config)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


def test_bad_gpus_and_windows_are_refused(tmp_path):
    with pytest.raises(EkyaError, match="gpus"):
        build_profiler_evaluation(compose_evaluation_config(tmp_path, "gpus=0"))
    with pytest.raises(EkyaError, match="at least 2"):
        build_profiler_evaluation(compose_evaluation_config(tmp_path, "windows=1"))


def test_bad_value_on_the_command_line_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.evaluate_profiler", f"paths.cache_dir={tmp_path}/cache",
         f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"hydra.run.dir={tmp_path}/outputs", "epochs=[5,3]"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=dict(os.environ, HYDRA_FULL_ERROR="0"), timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: epochs must be strictly increasing (e.g. [5, 15, 30]), got [5, 3]"
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "mlruns").exists()
