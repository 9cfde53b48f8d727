"""Entry point: the micro-profiler judged by its decisions, regret against the oracle and chained fidelity.

    python -m flows.profiler_regret                                  # every job of conf/profiler_regret.yaml
    python -m flows.profiler_regret 'run_jobs=[make_run]' 'seeds=[1]'

Every run is a ``window-loop`` flow of the local executor, logged as a child of its job's MLflow sweep
(experiment ``profiler_regret``) with ``resume=true``, so a re-run skips the runs that finished and
resumes a killed one after its last finished window. Then each job's report is written
(:func:`ekya_studies.profiler_regret.write_regret`). Every point is composed and checked before any runs;
bad input gets one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ekya.tracking.mlflow_logging import finish_sweep
from ekya_studies.profiler_regret import VARIANT_TAG, build_regret_plan, parent_run_of, write_regret
from flows.config import build_resume, check_run
from flows.errors import exit_on_bad_input
from flows.window_loop import run_config


def run_job(job: dict[str, Any], tracking_uri: str, experiment: str) -> None:
    """Every point of one job (a line each), then its report."""
    from mlflow.tracking import MlflowClient

    total = len(job["points"])
    print(f"[profiler_regret] {job['name']}: {total} runs -> MLflow experiment {experiment!r}", flush=True)
    client = MlflowClient(tracking_uri=tracking_uri)
    for i, point in enumerate(job["points"], start=1):
        began = time.perf_counter()
        summary = run_config(point["config"], job["sweep_dir"], f"{point['variant']} seed={point['seed']}")
        # The run of this config, FINISHED now: tagged with its variant, which the report groups by.
        client.set_tag(build_resume(point["config"]).run_id, VARIANT_TAG, point["variant"])
        print(f"  {job['name']} {i:2d}/{total}  {point['variant']:<16} seed={point['seed']}  "
              f"{100 * summary['summary/accuracy_mean']:6.2f}%  {time.perf_counter() - began:6.1f} s", flush=True)
    finish_sweep(tracking_uri, experiment, job["sweep_dir"])
    parent = parent_run_of(tracking_uri, experiment, job["sweep_dir"])
    note = (f"Job `{job['name']}`: `python -m flows.window_loop {' '.join(job['overrides'])}` with each variant's overrides "
            f"and seed; MLflow experiment `{experiment}`, sweep `{parent}`.")
    paths = write_regret(tracking_uri, experiment, job["name"], parent, job["output_dir"], note, job["variants"])
    print((Path(job["output_dir"]) / "summary.md").read_text(), flush=True)
    print(f"[profiler_regret] wrote {', '.join(p.name for p in paths)} to {job['output_dir']}", flush=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="profiler_regret")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    plan = build_regret_plan(OmegaConf.to_container(cfg, resolve=True))
    for job in plan["jobs"]:
        for point in job["points"]:
            check_run(point["config"])  # every run is checked before the first one trains
    for job in plan["jobs"]:
        run_job(job, plan["tracking_uri"], plan["experiment"])


if __name__ == "__main__":
    main()
