"""Entry point: measure the micro-profiler's fidelity (paper section 4.3, Figure 11a) and log it to MLflow.

    python -m flows.evaluate_profiler dataset=synthetic
    python -m flows.evaluate_profiler dataset=synthetic streams=2 windows=3 epochs=[5,15,30]
    python -m flows.evaluate_profiler model=shufflenet_v2_x0_5 profiler.curve_family=inverse

For every stream, window k >= 1, retraining configuration and epochs setting: the profiler's
estimate against full retraining (see :mod:`ekya_studies.profiler_fidelity`). One MLflow run in
experiment ``evaluate_profiler``: error and cost metrics, ``profiler_errors.csv`` and
``plots/profiler_error.png``; the summary table with the paper's targets is printed.
"""

from __future__ import annotations

from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.tracking.mlflow_logging import RunLogger, flatten
from ekya_studies.profiler_fidelity import ProfilerEvaluation, describe, log_results, run_name_and_tags, summary_text
from flows.config import build_profiler_evaluation
from flows.errors import exit_on_bad_input


@task(name="prepare", cache_policy=NO_CACHE)
def prepare(evaluation: ProfilerEvaluation) -> None:
    evaluation.prepare()


@task(name="evaluate-stream", cache_policy=NO_CACHE)
def evaluate_stream(evaluation: ProfilerEvaluation, stream: str) -> pd.DataFrame:
    return evaluation.evaluate_stream(stream)


@flow(name="evaluate-profiler")
def evaluate_profiler(config: dict[str, Any]) -> dict[str, float]:
    """Evaluate the micro-profiler on the configured dataset; returns the logged metrics."""
    evaluation = build_profiler_evaluation(config)
    print(describe(evaluation), flush=True)
    run_name, tags = run_name_and_tags(evaluation, str(config["dataset"].get("name", "dataset")))
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], run_name, flatten(config), tags) as logger:
        prepare(evaluation)
        # Streams run one after another: training seeds the global torch RNG.
        table = pd.concat([evaluate_stream(evaluation, stream) for stream in evaluation.stream_names], ignore_index=True)
        metrics = log_results(logger, table, evaluation.source.window_seconds, float(config["gpus"]))
    print(summary_text(metrics, str(config["device"])))
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
