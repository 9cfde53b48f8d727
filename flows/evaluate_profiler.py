"""Entry point: measure the micro-profiler's fidelity (paper section 4.3, Figure 11a) and log it to MLflow.

    python -m flows.evaluate_profiler dataset=synthetic
    python -m flows.evaluate_profiler dataset=synthetic streams=2 windows=3 epochs=[5,15,30]
    python -m flows.evaluate_profiler model=shufflenet_v2_x0_5 profiler.curve_family=inverse

For every stream, window k >= 1, retraining configuration and epochs setting: the profiler's
estimate against full retraining (see :mod:`ekya.profiling.evaluation`). One MLflow run in
experiment ``evaluate_profiler``: error and cost metrics, ``profiler_errors.csv`` and
``plots/profiler_error.png``; the summary table with the paper's targets is printed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.profiling.evaluation import ProfilerEvaluation, error_figure, summary_metrics, summary_text
from ekya.tracking.mlflow_logging import RunLogger, flatten
from flows.config import build_profiler_evaluation
from flows.errors import exit_on_bad_input


@task(name="prepare", cache_policy=NO_CACHE)
def prepare(evaluation: ProfilerEvaluation) -> None:
    evaluation.prepare()


@task(name="evaluate-stream", cache_policy=NO_CACHE)
def evaluate_stream(evaluation: ProfilerEvaluation, stream: str) -> pd.DataFrame:
    return evaluation.evaluate_stream(stream)


def log_results(logger: RunLogger, table: pd.DataFrame, window_seconds: float, gpus: float) -> dict[str, float]:
    """Log the metrics, ``profiler_errors.csv`` and ``plots/profiler_error.png``; returns the metrics."""
    import matplotlib.pyplot as plt

    metrics = summary_metrics(table, window_seconds, gpus)
    logger.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "profiler_errors.csv"
        table.to_csv(path, index=False)
        logger.log_file("", path)
    figure = error_figure(table)
    logger.log_figure("plots/profiler_error.png", figure)
    plt.close(figure)
    return metrics


@flow(name="evaluate-profiler")
def evaluate_profiler(config: dict[str, Any]) -> dict[str, float]:
    """Evaluate the micro-profiler on the configured dataset; returns the logged metrics."""
    evaluation = build_profiler_evaluation(config)
    gpus = float(config["gpus"])
    print(
        f"evaluating the micro-profiler on {len(evaluation.stream_names)} streams x {max(evaluation.windows.values()) - 1} "
        f"windows x {len(evaluation.retrain_configs)} configurations x epochs {evaluation.epochs} "
        f"({evaluation.num_cells} cells) with {evaluation.model.name}; cells in {evaluation.output}",
        flush=True,
    )
    tags = {"dataset": str(config["dataset"].get("name", "dataset")), "model": evaluation.model.name,
            "curve_family": evaluation.profiler.curve_family}
    run_name = f"{evaluation.profiler.curve_family} epochs={','.join(map(str, evaluation.epochs))} streams={len(evaluation.stream_names)}"
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], run_name, flatten(config), tags) as logger:
        prepare(evaluation)
        # Streams run one after another: training seeds the global torch RNG.
        table = pd.concat([evaluate_stream(evaluation, stream) for stream in evaluation.stream_names], ignore_index=True)
        metrics = log_results(logger, table, evaluation.source.window_seconds, gpus)
    print(summary_text(metrics))
    print(f"{evaluation.trainings_run} trainings run, the rest resumed (MLflow run {logger.run_id})")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate_profiler")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    build_profiler_evaluation(config)  # fail on bad input before Prefect or MLflow start
    evaluate_profiler(config)


if __name__ == "__main__":
    main()
