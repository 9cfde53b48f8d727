"""Entry point: every study of conf/experiment/ on the built-in data, its reports and the README headline.

    make reproduce                                          # = python -m flows.reproduce
    python -m flows.reproduce 'stages=[reports,headline]'   # reports and README from the newest sweeps
    python -m flows.reproduce 'stages=[trace,sim_vs_local]' # the simulator-vs-local comparison alone

Stages (conf/reproduce.yaml):

1. ``trace``: offline profiling (:mod:`flows.profile_offline`) of the reproduction's dataset into
   ``trace.output``, skipped when that folder already holds a trace of the same settings;
2. ``studies``: every point of every study (:mod:`ekya.tracking.studies` expands the yaml's
   sweep and the extra sweeps), replayed by the simulated executor. A study is one MLflow sweep
   (parent run) with a child per point, the runs ``python -m flows.window_loop -m
   experiment=<study>`` logs (without per-run plots unless ``run_plots``), but all of its points
   run in this process, without a Prefect flow run each (which costs ~10 s per point);
3. ``reports``: ``flows.report`` for every study's newest sweep (``reports/<study>/``) and the
   capacity table (``reports/capacity/capacity.md``);
4. ``sim_vs_local``: the same few points with the local and the simulated executor, and their
   differences (``reports/sim_vs_local/``);
5. ``headline``: the README block between ``<!-- headline:begin -->`` and ``<!-- headline:end -->``.

Everything is composed and checked before anything runs; bad input gets one ``error:`` line and
exit status 2.
"""

from __future__ import annotations

import copy
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import hydra
from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace
from ekya.tracking.mlflow_logging import finish_sweep
from ekya.tracking.readme import headline_markdown, replace_block, rewrite_block
from ekya.tracking.report import gain_at_highest_contention, gpu_saving, load_sweep, log_report, panels, select_sweeps
from ekya.tracking.sim_vs_local import agreement_lines, agreement_markdown, agreement_table, load_agreement_runs
from ekya.tracking.studies import check_studies, plan_study, stamp_trace, trace_is_current
from flows.capacity import capacity
from flows.config import build_offline_profiler
from flows.profile_offline import profile_offline
from flows.report import report
from flows.config import build_executor, build_scheduler
from flows.window_loop import logged_run, run_config

STAGES = ("trace", "studies", "reports", "sim_vs_local", "headline")
EXPERIMENT_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"
#: Keys of the profiling config that change the trace (a re-run skips profiling while they are equal).
TRACE_KEYS = ("dataset", "model", "retrain_space", "inference_space", "streams", "windows", "seed", "start_from", "device")


# ---------------------------------------------------------------------------------------------
# Composing and checking the plan (before Prefect starts)


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


def build_plan(cfg: DictConfig) -> dict[str, Any]:
    """Everything the run needs, composed and checked: plain containers (Prefect stores them as JSON).

    Needs Hydra's global state (inside ``@hydra.main`` or ``initialize_config_dir``). The cheap
    checks come first; composing every study point takes a few seconds.

    Raises:
        EkyaError: an unknown stage or study, a study neither run nor skipped, a malformed
            override, a config that does not compose, or README markers missing.
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
        readme = Path(headline["readme"])
        if not readme.is_file():
            raise EkyaError(f"headline.readme={str(readme)!r} does not exist")
        replace_block(readme.read_text(), "", where=str(readme))  # its markers are checked before any work

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
    build_offline_profiler(profile)  # checks the dataset, model and spaces (trains nothing)
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
        "headline": {"readme": str(headline["readme"]), "study": headline["study"], "command": str(headline["command"])},
    }


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


# ---------------------------------------------------------------------------------------------
# Stages


def ensure_trace(trace: dict[str, Any]) -> str:
    """Profile the trace (the ``profile-offline`` flow) unless ``trace['dir']`` holds one of the same settings."""
    if trace_is_current(trace["dir"], trace["settings"]):
        print(f"[trace] {trace['dir']} is up to date (same settings); profiling skipped", flush=True)
        return trace["dir"]
    started = time.perf_counter()
    profile_offline(trace["profile"])
    stamp_trace(trace["dir"], trace["settings"])
    print(f"[trace] profiled in {time.perf_counter() - started:.0f} s -> {trace['dir']}", flush=True)
    return trace["dir"]


def check_points(studies: list[dict[str, Any]]) -> None:
    """Every point's run and scheduler can be built on the trace (nothing runs, nothing is logged)."""
    for study in studies:
        for config, point in zip(study["configs"], study["points"]):
            try:
                build_scheduler(config, build_executor(config))
            except EkyaError as error:
                raise EkyaError(f"study {study['name']}, point {point}: {error}") from None


@task(name="run-study", cache_policy=NO_CACHE)
def run_study(study: dict[str, Any], run_plots: bool) -> None:
    """Every point of one study as children of one MLflow sweep; a line per point."""
    configs, total = study["configs"], len(study["configs"])
    started = time.perf_counter()
    print(f"[studies] {study['name']}: {total} points -> MLflow experiment {configs[0]['tracking']['experiment']!r}", flush=True)
    for i, (config, point) in enumerate(zip(configs, study["points"]), start=1):
        began = time.perf_counter()
        summary = logged_run(config, study["sweep_dir"], verbose=False, plots=run_plots)
        print(f"  {study['name']} {i:3d}/{total}  {point:<72} {100 * summary['summary/accuracy_mean']:6.2f}%  "
              f"{time.perf_counter() - began:4.1f} s", flush=True)
    finish_sweep(configs[0]["tracking"]["uri"], configs[0]["tracking"]["experiment"], study["sweep_dir"])
    print(f"[studies] {study['name']} done in {time.perf_counter() - started:.0f} s", flush=True)


def write_reports(plan: dict[str, Any]) -> None:
    """``flows.report`` for every study's newest sweep, and the capacity table."""
    settings, uri = plan["reports"], plan["tracking_uri"]
    for study in plan["studies"]:
        report(uri, study["name"], str(Path(settings["output_dir"]) / study["name"]), all_sweeps=False)
    capacity(uri, settings["capacity_study"], settings["accuracy_target"], str(Path(settings["output_dir"]) / "capacity"),
             all_sweeps=False)


def run_sim_vs_local(settings: dict[str, Any], output_dir: str) -> Path:
    """Run every point with both executors into one sweep (local runs are ``window-loop`` flows), then write the comparison."""
    sweep_dir = settings["sweep_dir"]
    for point in settings["points"]:
        simulated, local = point["simulated"], point["local"]
        name = simulated["scheduler"].get("retrain_config")
        if name is not None:  # Uniform's high/low as the trace resolves them, the same name for both
            resolved = build_executor(simulated).resolve_retrain_config(str(name))
            simulated["scheduler"]["retrain_config"] = local["scheduler"]["retrain_config"] = resolved
        for executor, config in (("simulated", simulated), ("local", local)):
            began = time.perf_counter()
            if executor == "simulated":
                summary = logged_run(config, sweep_dir, verbose=False)
            else:
                summary = run_config(config, sweep_dir)
            print(f"  sim_vs_local  {point['point']:<60} {executor:<9} {100 * summary['summary/accuracy_mean']:6.2f}%  "
                  f"{time.perf_counter() - began:5.1f} s", flush=True)
    uri = settings["points"][0]["simulated"]["tracking"]["uri"]
    finish_sweep(uri, settings["experiment"], sweep_dir)
    return write_agreement(uri, settings["experiment"], output_dir, settings["streams"], settings["windows"])


def write_agreement(uri: str, experiment: str, output_dir: str, streams: int | None = None, windows: int | None = None) -> Path:
    """``summary.md`` and ``agreement.csv`` of the newest sim-vs-local sweep, logged to it too."""
    parent = select_sweeps(uri, experiment, all_sweeps=False)[0]
    table, unmatched = agreement_table(load_agreement_runs(uri, experiment, parent))
    note = (f"The same points run with `executor=local` (real retraining and inference) and `executor=simulated` (replaying "
            f"the offline-profiled trace of the same data), MLflow experiment `{experiment}`, sweep `{parent}`."
            + (f" {streams} streams; local windows 1-{windows}, simulated 0-{windows}, compared on the windows both ran."
               if streams and windows else ""))
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "agreement.csv", index=False)
    (folder / "summary.md").write_text(agreement_markdown(table, unmatched, note))
    log_report(uri, parent, [folder / "summary.md", folder / "agreement.csv"])
    print(agreement_markdown(table, unmatched), flush=True)
    return folder / "summary.md"


def write_headline(plan: dict[str, Any], wall_seconds: float | None) -> bool:
    """Rewrite the README's headline block from the newest sweeps; returns whether it changed."""
    uri, settings = plan["tracking_uri"], plan["headline"]
    frame = load_sweep(uri, settings["study"], all_sweeps=False).frame
    savings = [s for x, _, part in panels(frame) if x == "gpus" for s in gpu_saving(part)] if len(frame) else []
    gain = gain_at_highest_contention(frame) if len(frame) else None
    experiment = plan["sim_vs_local"]["experiment"]
    try:
        parent = select_sweeps(uri, experiment, all_sweeps=False)[0]
    except EkyaError:
        agreement: list[str] = []  # the comparison has not been run: the block says nothing about it
    else:
        table, _ = agreement_table(load_agreement_runs(uri, experiment, parent))
        where = ", ".join(sorted({f"{r.streams} streams, windows {r.windows}" for r in table.itertuples()}))
        agreement = agreement_lines(table, where)
    trace = load_trace(plan["trace"]["dir"])
    profile = plan["trace"]["profile"]
    setting = (f"built-in synthetic data, {len(trace.streams)} streams x {trace.num_windows} windows of {trace.window_seconds:g} s, "
               f"{profile['model']['name']}, {len(trace.holdout_profile().names)} retraining configurations, "
               f"simulated executor over an offline-profiled trace")
    text = headline_markdown(gain, savings, setting, settings["command"], settings["study"], agreement, wall_seconds)
    changed = rewrite_block(settings["readme"], text)
    print(f"[headline] {settings['readme']} {'updated' if changed else 'unchanged'}:\n{text}", flush=True)
    return changed


@flow(name="reproduce")
def reproduce(plan: dict[str, Any], started: float | None = None) -> None:
    """Run the stages of ``plan`` (see :func:`build_plan`); ``started`` is the run's ``time.time()`` start."""
    started = time.time() if started is None else started
    stages = plan["stages"]
    points = sum(len(study["points"]) for study in plan["studies"])
    print(f"[reproduce] stages: {', '.join(stages)}; {len(plan['studies'])} studies, {points} points", flush=True)
    if "trace" in stages:
        ensure_trace(plan["trace"])
    if "studies" in stages:
        check_points(plan["studies"])
        for study in plan["studies"]:
            run_study(study, plan["run_plots"])
    if "reports" in stages:
        write_reports(plan)
    if "sim_vs_local" in stages:
        run_sim_vs_local(plan["sim_vs_local"], str(Path(plan["reports"]["output_dir"]) / "sim_vs_local"))
    if "headline" in stages:
        full = all(stage in stages for stage in STAGES)
        write_headline(plan, time.time() - started if full else None)
    print(f"[reproduce] done in {(time.time() - started) / 60:.1f} min", flush=True)


def check_inputs(plan: dict[str, Any]) -> None:
    """What the stages read but do not make themselves exists: the trace, and the studies' sweeps in MLflow.

    Raises:
        EkyaError: e.g. ``stages=[reports]`` before any study was run, or a missing trace.
    """
    stages = plan["stages"]
    if "trace" not in stages and {"studies", "sim_vs_local", "headline"} & set(stages):
        try:
            load_trace(plan["trace"]["dir"])
        except EkyaError as error:
            raise EkyaError(f"{error}; add the stage `trace` to profile it") from None
    if "studies" not in stages:
        needed = [s["name"] for s in plan["studies"]] if "reports" in stages else []
        needed += [plan["headline"]["study"]] if "headline" in stages else []
        for study in dict.fromkeys(needed):
            select_sweeps(plan["tracking_uri"], study, all_sweeps=False)


@hydra.main(version_base="1.3", config_path="../conf", config_name="reproduce")
def main(cfg: DictConfig) -> None:
    started = time.time()
    try:
        plan = build_plan(cfg)
        check_inputs(plan)
        reproduce(plan, started)
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
