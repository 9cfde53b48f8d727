"""Entry point: the figures and summary table of an experiment's sweeps, read back from MLflow.

    python -m flows.report experiment=gpus_sweep                 # reports/gpus_sweep/*.png + summary.md
    python -m flows.report experiment=streams_sweep report.sweeps=latest
    python -m flows.report tracking.experiment=ekya report.parent_run_id=<id>

Reads every child run of the experiment's sweeps (newest run per point), writes one PNG per
panel (accuracy vs the swept knob, one line per scheduler) and ``summary.md`` (tables, the GPU
saving factor, Ekya's gain at the highest contention, skipped runs) under ``report.output_dir``,
and logs them as artifacts (``report/``) of the newest sweep's parent run (see :mod:`ekya_studies.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.errors import EkyaError
from ekya_studies.report import SweepRuns, load_sweep, publish_report, select_sweeps, write_report
from flows.errors import exit_on_bad_input

SWEEP_CHOICES = ("all", "latest")


def report_options(cfg: DictConfig) -> dict[str, Any]:
    """The plain options of a report from the composed ``conf/report.yaml``."""
    report = OmegaConf.to_container(cfg.report, resolve=True)
    if report["sweeps"] not in SWEEP_CHOICES:
        raise EkyaError(f"report.sweeps={report['sweeps']!r}; valid: {', '.join(SWEEP_CHOICES)}")
    return {
        "tracking_uri": str(cfg.tracking.uri),
        "experiment": str(cfg.tracking.experiment),
        "parent_run_id": report["parent_run_id"],
        "all_sweeps": report["sweeps"] == "all",
        "output_dir": str(report["output_dir"]),
        "log_to_mlflow": bool(report["log_to_mlflow"]),
    }


@task(name="load-sweep", cache_policy=NO_CACHE)
def load(tracking_uri: str, experiment: str, parent_run_id: str | None, all_sweeps: bool) -> SweepRuns:
    return load_sweep(tracking_uri, experiment, parent_run_id, all_sweeps)


@task(name="write-report", cache_policy=NO_CACHE)
def write(runs: SweepRuns, output_dir: str) -> list[Path]:
    return write_report(runs, output_dir)


@flow(name="report")
def report(
    tracking_uri: str,
    experiment: str,
    output_dir: str,
    parent_run_id: str | None = None,
    all_sweeps: bool = True,
    log_to_mlflow: bool = True,
) -> list[str]:
    """Write the report of ``experiment``'s sweeps to ``output_dir``; returns the written files."""
    runs = load(tracking_uri, experiment, parent_run_id, all_sweeps)
    paths = write(runs, output_dir)
    publish_report(runs, paths, output_dir, log_to_mlflow)
    return [str(p) for p in paths]


def run_report(options: dict[str, Any]) -> list[str]:
    """Check that the experiment has a sweep (before Prefect starts), then run the report flow."""
    select_sweeps(options["tracking_uri"], options["experiment"], options["parent_run_id"], options["all_sweeps"])
    return report(**options)


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    run_report(report_options(cfg))


if __name__ == "__main__":
    main()
