"""Entry point: every study of conf/experiment/ on the built-in data, its reports and reports/headline.md.

    make reproduce                                          # = python -m flows.reproduce
    python -m flows.reproduce 'stages=[reports,headline]'   # reports and headline from the newest sweeps
    python -m flows.reproduce 'stages=[trace,sim_vs_local]' # the simulator-vs-local comparison alone

Stages (conf/reproduce.yaml; see :mod:`ekya_studies.reproduce`): ``trace`` (the
``profile-offline`` flow, unless cached), ``studies`` (every point of every study replayed by the
simulated executor; a study is one MLflow sweep, the runs ``python -m flows.window_loop -m
experiment=<study>`` logs, without per-run plots unless ``run_plots``, but all of its points run
in this process, without a Prefect flow run each, which costs ~10 s per point), ``reports`` (the
``report`` flow per study, the capacity table), ``sim_vs_local`` (local runs are ``window-loop``
flows), ``model_reuse`` (``flows.model_reuse``'s plan on the trace: reports/model_reuse/) and ``headline``
(``reports/headline.md``, a generated file).

Everything is composed and checked (:func:`ekya_studies.plan.build_plan`) before anything runs;
bad input gets one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.data.cache import write_text_atomically
from ekya_studies import reproduce as reproduction
from ekya_studies.plan import build_plan, check_inputs
from flows.config import build_executor, build_offline_profiler, build_scheduler
from flows.errors import exit_on_bad_input
from flows.model_reuse import run_reuse_plan
from flows.profile_offline import profile_offline
from flows.report import report
from flows.variant_study import check_plan
from flows.window_flow import logged_run
from flows.window_loop import run_config


def check_config(config: dict[str, Any]) -> None:
    """Build a point's run and scheduler (nothing runs, nothing is logged)."""
    build_scheduler(config, build_executor(config))


def resolve_retrain_config(config: dict[str, Any], name: str) -> str:
    """The configuration the simulated run of ``config`` calls ``name`` (Uniform's ``high``/``low`` from its trace)."""
    return build_executor(config).resolve_retrain_config(name)


@task(name="run-study", cache_policy=NO_CACHE)
def run_study(study: dict[str, Any], run_plots: bool) -> None:
    """Every point of one study as children of one MLflow sweep (plain calls, quiet)."""
    reproduction.run_study(study, partial(logged_run, verbose=False, plots=run_plots))


@flow(name="reproduce")
def reproduce(plan_path: str, started: float | None = None) -> None:
    """Run the stages of the plan saved at ``plan_path`` (JSON, see :func:`ekya_studies.plan.build_plan`; a flow run's
    parameters must stay under Prefect's 512 KB, which a plan of every point's config exceeds); ``started`` is the
    run's ``time.time()`` start."""
    started = time.time() if started is None else started
    plan = json.loads(Path(plan_path).read_text())
    stages = plan["stages"]
    points = sum(len(study["points"]) for study in plan["studies"])
    print(f"[reproduce] stages: {', '.join(stages)}; {len(plan['studies'])} studies, {points} points", flush=True)
    if "trace" in stages:
        reproduction.ensure_trace(plan["trace"], profile_offline)
    if "studies" in stages:
        reproduction.check_points(plan["studies"], check_config)
        for study in plan["studies"]:
            run_study(study, plan["run_plots"])
    if "reports" in stages:
        reproduction.write_reports(plan, report)
    if "sim_vs_local" in stages:
        reproduction.run_sim_vs_local(plan["sim_vs_local"], str(Path(plan["reports"]["output_dir"]) / "sim_vs_local"),
                                   partial(logged_run, verbose=False), run_config, resolve_retrain_config)
    if "model_reuse" in stages:
        check_plan(plan["model_reuse"])
        run_reuse_plan(plan["model_reuse"])
    if "headline" in stages:
        reproduction.write_headline(plan)
    print(f"[reproduce] done in {(time.time() - started) / 60:.1f} min", flush=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="reproduce")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    started = time.time()
    plan = build_plan(cfg, build_offline_profiler)
    check_inputs(plan)
    plan_path = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir) / "plan.json"
    write_text_atomically(plan_path, json.dumps(plan))
    reproduce(str(plan_path), started)


if __name__ == "__main__":
    main()
