"""The stages of a reproduction (``make reproduce``), run on a plan of :mod:`ekya_studies.plan`.

1. ``trace``: :func:`ensure_trace` profiles the reproduction's dataset offline into
   ``trace.output``, skipped when that folder already holds a trace of the same settings;
2. ``studies``: :func:`check_points`, then :func:`run_study` for every study: every point
   replayed by the simulated executor, as the children of one MLflow sweep (parent run) of the
   study's experiment, all in one process;
3. ``reports``: :func:`write_reports`: every study's newest sweep (``reports/<study>/``) and the
   capacity table (``reports/capacity/capacity.md``);
4. ``sim_vs_local``: :func:`run_sim_vs_local`: the same few points with the local and the
   simulated executor, and their differences (``reports/sim_vs_local/``);
5. ``headline``: :func:`write_headline`: ``headline.output`` (``reports/headline.md``), a
   generated file from the newest sweeps.

What needs a config turned into objects or a Prefect flow run is passed in by the entry point
(``flows/reproduce.py``): checking a point, running one, profiling the trace.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace
from ekya.tracking.mlflow_logging import finish_sweep
from ekya_studies.capacity import write_capacity
from ekya_studies.headline import headline_markdown, write_headline_file
from ekya_studies.report import gain_at_highest_contention, gpu_saving, load_sweep, panels, report_sweep, select_sweeps
from ekya_studies.sim_vs_local import agreement_lines, agreement_table, load_agreement_runs, write_agreement
from ekya_studies.sweeps import stamp_trace, trace_is_current

#: One logged MLflow run of a resolved window-loop config, a point of sweep ``sweep_dir``; returns its summary metrics.
RunConfig = Callable[[dict[str, Any], str], dict[str, float]]


def ensure_trace(trace: dict[str, Any], profile: Callable[[dict[str, Any]], Any]) -> str:
    """``profile(trace['profile'])`` (offline profiling) unless ``trace['dir']`` holds a trace of the same settings."""
    if trace_is_current(trace["dir"], trace["settings"]):
        print(f"[trace] {trace['dir']} is up to date (same settings); profiling skipped", flush=True)
        return trace["dir"]
    started = time.perf_counter()
    profile(trace["profile"])
    stamp_trace(trace["dir"], trace["settings"])
    print(f"[trace] profiled in {time.perf_counter() - started:.0f} s -> {trace['dir']}", flush=True)
    return trace["dir"]


def check_points(studies: list[dict[str, Any]], check: Callable[[dict[str, Any]], Any]) -> None:
    """``check(config)`` (build its run and scheduler; nothing runs, nothing is logged) for every point of every study.

    Raises:
        EkyaError: the first point that cannot be built, named by its study and overrides.
    """
    for study in studies:
        for config, point in zip(study["configs"], study["points"]):
            try:
                check(config)
            except EkyaError as error:
                raise EkyaError(f"study {study['name']}, point {point}: {error}") from None


def run_study(study: dict[str, Any], run: RunConfig) -> None:
    """Every point of one study as children of one MLflow sweep; a line per point."""
    configs, total = study["configs"], len(study["configs"])
    started = time.perf_counter()
    print(f"[studies] {study['name']}: {total} points -> MLflow experiment {configs[0]['tracking']['experiment']!r}", flush=True)
    for i, (config, point) in enumerate(zip(configs, study["points"]), start=1):
        began = time.perf_counter()
        summary = run(config, study["sweep_dir"])
        print(f"  {study['name']} {i:3d}/{total}  {point:<72} {100 * summary['summary/accuracy_mean']:6.2f}%  "
              f"{time.perf_counter() - began:4.1f} s", flush=True)
    finish_sweep(configs[0]["tracking"]["uri"], configs[0]["tracking"]["experiment"], study["sweep_dir"])
    print(f"[studies] {study['name']} done in {time.perf_counter() - started:.0f} s", flush=True)


def write_reports(plan: dict[str, Any], report: Callable[..., Any] = report_sweep) -> None:
    """The report of every study's newest sweep, and the capacity table.

    Args:
        plan: the reproduction's plan.
        report: writes one study's report, called as :func:`ekya_studies.report.report_sweep`
            (the default) is; the entry point passes its ``report`` flow.
    """
    settings, uri = plan["reports"], plan["tracking_uri"]
    for study in plan["studies"]:
        report(uri, study["name"], str(Path(settings["output_dir"]) / study["name"]), all_sweeps=False)
    write_capacity(uri, settings["capacity_study"], settings["accuracy_target"], str(Path(settings["output_dir"]) / "capacity"),
                   all_sweeps=False)


def run_sim_vs_local(settings: dict[str, Any], output_dir: str, run: RunConfig, run_local: RunConfig,
                     resolve_retrain_config: Callable[[dict[str, Any], str], str]) -> Path:
    """Run every point with both executors into one sweep, then write the comparison (:func:`ekya_studies.sim_vs_local.write_agreement`).

    Args:
        settings: the plan's ``sim_vs_local``.
        output_dir: where ``summary.md`` and ``agreement.csv`` go.
        run: one quiet run in this process (the simulated runs).
        run_local: one run of the local executor (the entry point's window-loop flow: streams in parallel).
        resolve_retrain_config: ``(simulated config, name)`` -> the configuration the trace calls
            ``name`` (Uniform's ``high``/``low``); both runs then use that same name.
    """
    sweep_dir = settings["sweep_dir"]
    for point in settings["points"]:
        simulated, local = point["simulated"], point["local"]
        name = simulated["scheduler"].get("retrain_config")
        if name is not None:  # Uniform's high/low as the trace resolves them, the same name for both
            resolved = resolve_retrain_config(simulated, str(name))
            simulated["scheduler"]["retrain_config"] = local["scheduler"]["retrain_config"] = resolved
        for executor, config in (("simulated", simulated), ("local", local)):
            began = time.perf_counter()
            summary = (run if executor == "simulated" else run_local)(config, sweep_dir)
            print(f"  sim_vs_local  {point['point']:<60} {executor:<9} {100 * summary['summary/accuracy_mean']:6.2f}%  "
                  f"{time.perf_counter() - began:5.1f} s", flush=True)
    uri = settings["points"][0]["simulated"]["tracking"]["uri"]
    finish_sweep(uri, settings["experiment"], sweep_dir)
    return write_agreement(uri, settings["experiment"], output_dir, settings["streams"], settings["windows"])


def write_headline(plan: dict[str, Any]) -> bool:
    """Write the headline file (``plan['headline']['output']``) from the newest sweeps; returns whether it changed."""
    uri, settings = plan["tracking_uri"], plan["headline"]
    frame = load_sweep(uri, settings["study"], all_sweeps=False).frame
    savings = [s for x, _, part in panels(frame) if x == "gpus" for s in gpu_saving(part)] if len(frame) else []
    gain = gain_at_highest_contention(frame) if len(frame) else None
    experiment = plan["sim_vs_local"]["experiment"]
    try:
        parent = select_sweeps(uri, experiment, all_sweeps=False)[0]
    except EkyaError:
        agreement: list[str] = []  # the comparison has not been run: the headline says nothing about it
    else:
        table, _ = agreement_table(load_agreement_runs(uri, experiment, parent))
        where = ", ".join(sorted({f"{r.streams} streams, windows {r.windows}" for r in table.itertuples()}))
        agreement = agreement_lines(table, where)
    trace = load_trace(plan["trace"]["dir"])
    profile = plan["trace"]["profile"]
    setting = (f"built-in synthetic data, {len(trace.streams)} streams x {trace.num_windows} windows of {trace.window_seconds:g} s, "
               f"{profile['model']['name']}, {len(trace.holdout_profile().names)} retraining configurations, "
               f"simulated executor over an offline-profiled trace")
    text = headline_markdown(gain, savings, setting, settings["command"], settings["study"], agreement)
    changed = write_headline_file(settings["output"], text)
    print(f"[headline] {settings['output']} {'updated' if changed else 'unchanged'}:\n{text}", flush=True)
    return changed
