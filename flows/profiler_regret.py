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

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ekya_studies.profiler_regret import build_regret_plan, write_regret
from flows.errors import exit_on_bad_input
from flows.variant_study import check_plan, run_job


def run_regret_job(job: dict[str, Any], tracking_uri: str, experiment: str) -> None:
    """Every point of one job of the regret plan, then its report."""
    run_job(job, tracking_uri, experiment, "profiler_regret", write_regret)


@hydra.main(version_base="1.3", config_path="../conf", config_name="profiler_regret")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    plan = build_regret_plan(OmegaConf.to_container(cfg, resolve=True))
    check_plan(plan)  # every run is checked before the first one trains
    for job in plan["jobs"]:
        run_regret_job(job, plan["tracking_uri"], plan["experiment"])


if __name__ == "__main__":
    main()
