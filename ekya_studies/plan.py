"""The plan of a reproduction (``conf/reproduce.yaml``): every study point composed and checked before anything runs.

:func:`build_plan` reads the composed ``conf/reproduce.yaml``: which stages run, every point of
every study (the yaml's own sweep and the extra sweeps, expanded by :mod:`ekya_studies.sweeps`)
as a resolved window-loop config replaying the reproduction's trace, the offline-profiling
config of that trace, the simulator-vs-local points and the report and headline settings. The
plan is plain containers (Prefect stores it as JSON). :func:`check_inputs` checks that what the
chosen stages read but do not make themselves exists.

Composing needs Hydra's global state (inside ``@hydra.main`` or ``initialize_config_dir``).
Override strings are parsed with Hydra's own parser, so quoting and escapes mean what they mean
on the command line.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace
from ekya_studies.headline import check_output
from ekya_studies.report import select_sweeps
from ekya_studies.sweeps import check_studies, plan_study

#: The stages of a reproduction, in run order (see :mod:`ekya_studies.reproduce`).
STAGES = ("trace", "studies", "reports", "sim_vs_local", "model_reuse", "headline")
#: The studies: one yaml each.
EXPERIMENT_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"
#: Keys of the profiling config that change the trace (a re-run skips profiling while they are equal).
TRACE_KEYS = ("dataset", "model", "retrain_space", "inference_space", "streams", "windows", "seed", "start_from", "device")


def _override(key: str, value: Any) -> str:
    """``key=value`` for Hydra, quoted when the value has characters its grammar treats specially."""
    text = str(value)
    if re.fullmatch(r"[\w./:+@-]*", text):
        return f"{key}={text}"
    return f"{key}='" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose_plain(config_name: str, overrides: Sequence[str], where: str) -> dict[str, Any]:
    """The resolved config ``config_name`` with ``overrides``, as plain containers."""
    try:
        return OmegaConf.to_container(compose(config_name=config_name, overrides=list(overrides)), resolve=True)
    except (HydraException, OmegaConfBaseException) as error:
        raise EkyaError(f"{where}: {' '.join(str(error).split())}") from None


def compose_points(base: Sequence[str], points: Sequence[Sequence[str]], where: str) -> list[dict[str, Any]]:
    """``compose_plain("config", [*base, *point])`` for every point, the same configs but far faster.

    Composing costs ~0.1-0.3 s here, and a study has up to ~70 points. A point's overrides that
    choose config groups (``scheduler=uniform``) or add/delete keys are composed (once per
    distinct set); plain value overrides (``gpus=2``) are then set on a copy, typed as Hydra
    types them, with the same checks (an unknown key is refused).
    """
    try:
        groups = set(compose(config_name="config", overrides=list(base), return_hydra_config=True).hydra.runtime.choices)
    except (HydraException, OmegaConfBaseException) as error:
        raise EkyaError(f"{where}: {' '.join(str(error).split())}") from None
    parser = OverridesParser.create()
    composed: dict[tuple[str, ...], DictConfig] = {}
    configs = []
    for point in points:
        label = f"{where}, point {' '.join(point)}"
        try:
            parsed = parser.parse_overrides(list(point))
        except HydraException as error:
            raise EkyaError(f"{label}: {' '.join(str(error).split())}") from None
        plain = [o for o in parsed if o.type.name == "CHANGE" and not o.is_sweep_override() and o.key_or_group not in groups
                 and o.package is None]
        structural = tuple(o.input_line for o in parsed if o not in plain)
        if structural not in composed:
            composed[structural] = _compose_config([*base, *structural], label)
        cfg = copy.deepcopy(composed[structural])
        try:
            for override in plain:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            configs.append(OmegaConf.to_container(cfg, resolve=True))
        except (HydraException, OmegaConfBaseException) as error:
            raise EkyaError(f"{label}: {' '.join(str(error).split())}") from None
    return configs


def _compose_config(overrides: Sequence[str], where: str) -> DictConfig:
    try:
        return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise EkyaError(f"{where}: {' '.join(str(error).split())}") from None


def split_overrides(overrides: Sequence[str], where: str) -> dict[str, list[str]]:
    """Command-line overrides as ``key -> values`` (a sweep ``a,b`` gives two values), in order."""
    try:
        parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    except HydraException as error:
        raise EkyaError(f"{where}: {' '.join(str(error).split())}") from None
    params: dict[str, list[str]] = {}
    for override in parsed:
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise EkyaError(f"{where}: {override.input_line!r}: only comma-separated sweeps (a,b,c) are supported")
            params[override.get_key_element()] = list(override.sweep_string_iterator())
        else:
            params[override.get_key_element()] = [override.get_value_element_as_str()]
    return params


def available_studies() -> list[str]:
    """The studies: ``conf/experiment/*.yaml``."""
    return sorted(path.stem for path in EXPERIMENT_DIR.glob("*.yaml"))


def own_sweep(study: str) -> dict[str, list[str]]:
    """The ``hydra.sweeper.params`` of ``conf/experiment/<study>.yaml``, split into values."""
    try:
        cfg = compose(config_name="config", overrides=[f"experiment={study}"], return_hydra_config=True)
    except HydraException as error:
        raise EkyaError(f"study {study}: {' '.join(str(error).split())}") from None
    params = cfg.hydra.sweeper.get("params") or {}
    return split_overrides([f"{key}={value}" for key, value in params.items()], f"conf/experiment/{study}.yaml hydra.sweeper.params")


def _stages(stages: Any) -> list[str]:
    if not isinstance(stages, list) or not stages:
        raise EkyaError(f"stages={stages!r}; give a non-empty list of: {', '.join(STAGES)}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise EkyaError(f"unknown stage(s) {', '.join(map(repr, unknown))}; valid: {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]



def build_plan(cfg: DictConfig, check_profile: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Everything the run needs, composed and checked: plain containers (Prefect stores them as JSON).

    Needs Hydra's global state (inside ``@hydra.main`` or ``initialize_config_dir``). The cheap
    checks come first; composing every study point takes a few seconds.

    Args:
        cfg: the composed ``conf/reproduce.yaml``.
        check_profile: checks the trace's offline-profiling config (builds its dataset, model and
            spaces, trains nothing; raises :class:`~ekya.errors.EkyaError`): the entry point's
            ``build_offline_profiler``.

    Raises:
        EkyaError: an unknown stage or study, a study neither run nor skipped, a malformed
            override, a config that does not compose, or a headline output that cannot be a file.
    """
    options = OmegaConf.to_container(cfg, resolve=True)
    stages = _stages(options.get("stages"))
    studies = options.get("studies") or {}
    check_studies(available_studies(), list(studies), options.get("skip_studies") or [])
    for name, extra in studies.items():
        if extra is not None and not (isinstance(extra, list) and all(isinstance(sweep, list) for sweep in extra)):
            raise EkyaError(f"studies.{name} must be a list of sweeps, each a list of overrides, got {extra!r}")
    changes = options.get("sweep_changes") or {}
    unknown = [name for name in changes if name not in studies]
    if unknown:
        raise EkyaError(f"sweep_changes names studies that are not run: {', '.join(unknown)}; run: {', '.join(studies)}")
    reports, headline = options["reports"], options["headline"]
    for key, study in (("reports.capacity_study", reports["capacity_study"]), ("headline.study", headline["study"])):
        if study not in studies:
            raise EkyaError(f"{key}={study!r} is not a study that is run; run: {', '.join(studies)}")
    target = reports["accuracy_target"]
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 <= target <= 1:
        raise EkyaError(f"reports.accuracy_target={target!r}; valid: a fraction in [0, 1]")
    if "headline" in stages:
        check_output(headline["output"])  # before any work

    common = [
        _override("tracking.uri", options["tracking"]["uri"]),
        _override("paths.cache_dir", options["paths"]["cache_dir"]),
        _override("paths.data_dir", options["paths"]["data_dir"]),
    ]
    trace_dir = str(Path(options["trace"]["output"]).resolve())
    trace_overrides = [str(o) for o in options["trace"]["overrides"] or []]
    profile = compose_plain(
        "profile_offline", [*common[1:], *trace_overrides, _override("output", trace_dir), "progress=false"], "trace.overrides"
    )
    check_profile(profile)  # checks the dataset, model and spaces (trains nothing)
    sweep_root = Path(options["sweeps_dir"]).resolve() / datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
    plan_studies = []
    for name, extra in studies.items():
        sweeps = [split_overrides(sweep, f"studies.{name}[{i}]") for i, sweep in enumerate(extra or [])]
        study = plan_study(name, own_sweep(name), sweeps, split_overrides(changes.get(name) or [], f"sweep_changes.{name}"))
        configs = []
        if "studies" in stages:
            base = [*common, f"experiment={name}", _override("executor.trace", trace_dir)]
            configs = compose_points(base, [point.overrides for point in study.points], f"study {name}")
        plan_studies.append({
            "name": name, "points": [str(p) for p in study.points], "configs": configs, "sweep_dir": str(sweep_root / name),
        })
    return {
        "stages": stages,
        "tracking_uri": options["tracking"]["uri"],
        "trace": {"dir": trace_dir, "profile": profile, "settings": {k: profile.get(k) for k in TRACE_KEYS}},
        "studies": plan_studies,
        "run_plots": bool(options.get("run_plots", False)),
        "reports": {"output_dir": str(reports["output_dir"]), "capacity_study": reports["capacity_study"], "accuracy_target": float(target)},
        "sim_vs_local": _sim_vs_local_plan(options, common, trace_overrides, trace_dir, sweep_root) if "sim_vs_local" in stages
        else {"experiment": options["sim_vs_local"]["experiment"]},
        "model_reuse": _model_reuse_plan(common, trace_dir, reports["output_dir"], sweep_root) if "model_reuse" in stages else None,
        "headline": {"output": str(headline["output"]), "study": headline["study"], "command": str(headline["command"])},
    }


def _model_reuse_plan(common: list[str], trace_dir: str, reports_dir: str, sweep_root: Path) -> dict[str, Any]:
    """``conf/model_reuse.yaml``'s plan on the reproduction's trace (its ``reproduce`` and ``make_run`` jobs), into
    ``<reports_dir>/model_reuse``."""
    options = compose_plain("model_reuse", [*common, _override("trace", trace_dir), _override("output_dir", str(Path(reports_dir) / "model_reuse")),
                                            _override("sweeps_dir", str(sweep_root / "model_reuse")), "run_jobs=[reproduce,make_run]"],
                            "model_reuse")
    return variant_plan(options, resume=False)


def _sim_vs_local_plan(options: dict, common: list[str], trace_overrides: list[str], trace_dir: str, sweep_root: Path) -> dict[str, Any]:
    """Per point: the simulated and the local config (same data, streams, GPUs and scheduler)."""
    settings = options["sim_vs_local"]
    experiment = str(settings["experiment"])
    for key in ("streams", "windows"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise EkyaError(f"sim_vs_local.{key}={settings[key]!r}; valid: an int >= 1")
    shared = [*common, *trace_overrides, _override("tracking.experiment", experiment), f"streams={settings['streams']}",
              _override("gpus", settings["gpus"])]
    points = []
    for i, point in enumerate(settings["points"] or []):
        where = f"sim_vs_local.points[{i}]"
        split_overrides(point, where)  # a sweep is refused below by Hydra's compose (one run per point)
        simulated = compose_plain("config", [*shared, "executor=simulated", _override("executor.trace", trace_dir),
                                             f"windows={settings['windows'] + 1}", *point], where)
        local = compose_plain("config", [*shared, "executor=local", *(settings.get("local_overrides") or []),
                                         f"windows={settings['windows']}", *point], where)
        points.append({"point": " ".join(point), "simulated": simulated, "local": local})
    if not points:
        raise EkyaError("sim_vs_local.points is empty; give at least one point (a list of overrides)")
    return {"experiment": experiment, "points": points, "sweep_dir": str(sweep_root / "sim_vs_local"),
            "streams": settings["streams"], "windows": settings["windows"]}


def check_inputs(plan: dict[str, Any]) -> None:
    """What the stages read but do not make themselves exists: the trace, and the studies' sweeps in MLflow.

    Raises:
        EkyaError: e.g. ``stages=[reports]`` before any study was run, or a missing trace.
    """
    stages = plan["stages"]
    if "trace" not in stages and {"studies", "sim_vs_local", "model_reuse", "headline"} & set(stages):
        try:
            load_trace(plan["trace"]["dir"])
        except EkyaError as error:
            raise EkyaError(f"{error}; add the stage `trace` to profile it") from None
    if "studies" not in stages:
        needed = [s["name"] for s in plan["studies"]] if "reports" in stages else []
        needed += [plan["headline"]["study"]] if "headline" in stages else []
        for study in dict.fromkeys(needed):
            select_sweeps(plan["tracking_uri"], study, all_sweeps=False)


def variant_plan(options: dict[str, Any], common: Sequence[str] = (), resume: bool = True) -> dict[str, Any]:
    """Every run of a study of jobs x variants x seeds (``flows.profiler_regret``, ``flows.model_reuse``), composed and
    checked before any runs. ``options`` is the study's composed main config (plain containers: ``jobs`` and ``variants``,
    each a mapping of names to window-loop overrides, ``seeds``, ``run_jobs``, ``run_variants``, ``output_dir``,
    ``sweeps_dir``, ``tracking``, ``paths``); ``common`` overrides go before every job's. Composing needs Hydra's global state.

    Returns:
        ``{"jobs": [{"name", "sweep_dir", "output_dir", "overrides", "variants", "points": [{"variant", "seed", "config"}]}],
        "tracking_uri", "experiment"}`` (``variants``: every variant the plan defines, the report's). With ``resume`` every
        point has ``resume=true``, so a re-run into the same sweeps skips the runs that finished and resumes killed ones;
        without, every point is a new run (``make reproduce``: a new sweep each time, from the current trace).

    Raises:
        EkyaError: no job, a job or variant that is not a list of overrides, seeds that are not distinct ints, an unknown
            ``run_jobs`` or ``run_variants`` entry, or a point Hydra cannot compose.
    """
    jobs, variants, seeds = options["jobs"] or {}, options["variants"] or {}, options["seeds"]
    if not jobs:
        raise EkyaError("jobs is empty; give at least one job (a name and its window-loop overrides)")
    if not variants:
        raise EkyaError("variants is empty; give at least one variant (a name and its window-loop overrides)")
    for section, entries in (("jobs", jobs), ("variants", variants)):
        for name, overrides in entries.items():
            if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
                raise EkyaError(f"{section}.{name} must be a list of overrides (strings), got {overrides!r}")
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise EkyaError(f"seeds must be a non-empty list of distinct ints, got {seeds!r}")
    chosen = options.get("run_jobs") or list(jobs)
    unknown = [name for name in chosen if name not in jobs]
    if unknown:
        raise EkyaError(f"run_jobs: unknown job(s) {', '.join(map(str, unknown))}; valid: {', '.join(jobs)}")
    run_variants = options.get("run_variants") or list(variants)
    unknown = [name for name in run_variants if name not in variants]
    if unknown:
        raise EkyaError(f"run_variants: unknown variant(s) {', '.join(map(str, unknown))}; valid: {', '.join(variants)}")
    common = [*common, f"tracking.uri={options['tracking']['uri']}", f"tracking.experiment={options['tracking']['experiment']}",
              f"paths.cache_dir={options['paths']['cache_dir']}", f"paths.data_dir={options['paths']['data_dir']}",
              f"resume={str(resume).lower()}"]
    planned = []
    for job in chosen:
        labels = [(variant, seed) for variant in variants if variant in run_variants for seed in seeds]
        configs = compose_points([*common, *jobs[job]], [[*variants[variant], f"seed={seed}"] for variant, seed in labels], f"job {job}")
        planned.append({
            "name": job, "sweep_dir": str(Path(options["sweeps_dir"]) / job), "output_dir": str(Path(options["output_dir"]) / job),
            "overrides": list(jobs[job]), "variants": list(variants),
            "points": [{"variant": variant, "seed": seed, "config": config} for (variant, seed), config in zip(labels, configs)],
        })
    return {"jobs": planned, "tracking_uri": str(options["tracking"]["uri"]), "experiment": str(options["tracking"]["experiment"])}
