"""Entry point: the model cache and drift-triggered retraining, each on and off, alone and together.

    python -m flows.model_reuse                              # every job of conf/model_reuse.yaml
    python -m flows.model_reuse 'run_jobs=[reproduce]'       # the simulated job alone (needs the reproduction's trace)

Every run is a ``window-loop`` run logged as a child of its job's MLflow sweep (experiment ``model_reuse``)
with ``resume=true``, so a re-run skips the runs that finished. Then each job's report is written
(:func:`ekya_studies.model_reuse.write_reuse`: reports/model_reuse/<job>/). ``make reproduce`` runs the same
plan as its ``model_reuse`` stage. Every point is composed and checked before any runs; bad input gets one
``error:`` line and exit status 2.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ekya_studies.model_reuse import write_reuse
from ekya_studies.plan import variant_plan
from flows.errors import exit_on_bad_input
from flows.variant_study import check_plan, run_plan


def run_reuse_plan(plan: dict[str, Any]) -> None:
    """Every job of a model-reuse plan (:func:`ekya_studies.plan.variant_plan`) and its report."""
    run_plan(plan, "model_reuse", write_reuse)


@hydra.main(version_base="1.3", config_path="../conf", config_name="model_reuse")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    plan = variant_plan(OmegaConf.to_container(cfg, resolve=True))
    check_plan(plan)  # every run is checked before the first one starts
    run_reuse_plan(plan)


if __name__ == "__main__":
    main()
