"""Running a study of jobs x variants x seeds (:func:`ekya_studies.plan.variant_plan`): ``flows.profiler_regret``,
``flows.model_reuse`` and the ``model_reuse`` stage of ``flows.reproduce``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ekya.tracking.mlflow_logging import finish_sweep
from ekya_studies.profiler_regret import VARIANT_TAG, parent_run_of
from flows.config import build_resume, check_run
from flows.window_loop import run_config

#: Writes a job's report: (tracking URI, experiment, job name, parent run id of its sweep, output folder, note,
#: the plan's variants) -> the files written (:func:`ekya_studies.profiler_regret.write_regret`, ...model_reuse.write_reuse).
WriteReport = Callable[[str, str, str, str, str, str, list[str]], list[Path]]


def check_plan(plan: dict[str, Any]) -> None:
    """Every run of the plan checked (built, nothing runs) before the first one starts."""
    for job in plan["jobs"]:
        for point in job["points"]:
            check_run(point["config"])


def run_job(job: dict[str, Any], tracking_uri: str, experiment: str, study: str, write: WriteReport) -> None:
    """Every point of one job (a line each; each a ``window-loop`` run, resumed or skipped if it ran), then its report."""
    from mlflow.tracking import MlflowClient

    total = len(job["points"])
    print(f"[{study}] {job['name']}: {total} runs -> MLflow experiment {experiment!r}", flush=True)
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
    paths = write(tracking_uri, experiment, job["name"], parent, job["output_dir"], note, job["variants"])
    print((Path(job["output_dir"]) / "summary.md").read_text(), flush=True)
    print(f"[{study}] wrote {', '.join(p.name for p in paths)} to {job['output_dir']}", flush=True)


def run_plan(plan: dict[str, Any], study: str, write: WriteReport) -> None:
    """Every job of ``plan`` (:func:`ekya_studies.plan.variant_plan`), each followed by its report."""
    for job in plan["jobs"]:
        run_job(job, plan["tracking_uri"], plan["experiment"], study, write)
