"""Does the simulator agree with real execution? The same points run with both executors, compared.

A point (scheduler, its configuration, GPUs, streams) is run once with ``executor=local`` (real
retraining and inference) and once with ``executor=simulated`` replaying a trace profiled offline
from the same data. The local executor's windows are ``1 .. n`` (window 0 has nothing to learn
from), the simulator's ``0 .. n``, so each pair is compared on the windows both ran.
:func:`agreement_table` gives per point both mean accuracies and their difference in accuracy
points; :func:`load_agreement_runs` reads the runs back from an MLflow sweep, and
:func:`write_agreement` writes the comparison of the newest sweep (``summary.md``, ``agreement.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from ekya.errors import EkyaError
from ekya_studies.report import WINDOW_METRIC, log_report, markdown_table, scheduler_label, select_sweeps

EXECUTORS = ("local", "simulated")
#: Columns of :func:`agreement_table`.
AGREEMENT_COLUMNS = (
    "label", "gpus", "streams", "windows", "local", "simulated", "difference_points", "max_window_difference_points",
)


@dataclass(frozen=True)
class LoggedRun:
    """A logged (MLflow) run of one point with one executor, as the comparison reads it back.

    Attributes:
        executor: ``local`` or ``simulated``.
        label: the scheduler's paper name (e.g. ``Ekya``, ``Uniform (Cfg 1, 50%)``).
        gpus: GPUs of the box.
        streams: number of streams.
        window_accuracy: window index -> mean accuracy over streams (fraction).
        run_id: the MLflow run, if any.
    """

    executor: str
    label: str
    gpus: float
    streams: int
    window_accuracy: dict[int, float] = field(default_factory=dict)
    run_id: str = ""

    @property
    def point(self) -> tuple[str, float, int]:
        return (self.label, self.gpus, self.streams)


def _window_range(windows: Sequence[int]) -> str:
    windows = sorted(windows)
    if windows == list(range(windows[0], windows[-1] + 1)):
        return f"{windows[0]}-{windows[-1]}" if len(windows) > 1 else str(windows[0])
    return ",".join(map(str, windows))


def agreement_table(runs: Iterable[LoggedRun]) -> tuple[pd.DataFrame, list[str]]:
    """Local vs simulated mean accuracy per point, over the windows both executors ran.

    Returns:
        One row per point with both runs and common windows: ``label, gpus, streams, windows``
        (e.g. ``"1-3"``), ``local`` and ``simulated`` (mean accuracy over those windows and the
        streams, fraction), ``difference_points`` (local - simulated, accuracy points, 0-100 scale)
        and ``max_window_difference_points`` (largest absolute per-window difference, points);
        and the points that could not be compared, with why.

    Raises:
        EkyaError: an executor other than local/simulated, or two runs of the same executor and point.
    """
    by_point: dict[tuple[str, float, int], dict[str, LoggedRun]] = {}
    for run in runs:
        if run.executor not in EXECUTORS:
            raise EkyaError(f"run {run.run_id or run.label}: executor {run.executor!r}; valid: {', '.join(EXECUTORS)}")
        same = by_point.setdefault(run.point, {})
        if run.executor in same:
            raise EkyaError(f"two {run.executor} runs of {run.label} with {run.gpus:g} GPUs and {run.streams} streams")
        same[run.executor] = run
    rows, unmatched = [], []
    for (label, gpus, streams), pair in by_point.items():
        where = f"{label}, {gpus:g} GPUs, {streams} streams"
        missing = [e for e in EXECUTORS if e not in pair]
        if missing:
            unmatched.append(f"{where}: no {' or '.join(missing)} run")
            continue
        local, simulated = pair["local"].window_accuracy, pair["simulated"].window_accuracy
        common = sorted(set(local) & set(simulated))
        if not common:
            unmatched.append(f"{where}: no window in common (local {sorted(local)}, simulated {sorted(simulated)})")
            continue
        local_values = np.array([local[w] for w in common])
        simulated_values = np.array([simulated[w] for w in common])
        rows.append({
            "label": label, "gpus": gpus, "streams": streams, "windows": _window_range(common),
            "local": float(local_values.mean()), "simulated": float(simulated_values.mean()),
            "difference_points": 100 * float(local_values.mean() - simulated_values.mean()),
            "max_window_difference_points": 100 * float(np.abs(local_values - simulated_values).max()),
        })
    table = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    return table.sort_values(["label", "gpus", "streams"]).reset_index(drop=True) if len(table) else table, unmatched


def agreement_markdown(table: pd.DataFrame, unmatched: Sequence[str] = (), note: str = "") -> str:
    """``summary.md`` of the comparison: a table in accuracy %, differences in points."""
    lines = ["# Simulator vs local execution", ""]
    if note:
        lines += [note, ""]
    rows = [
        (r.label, f"{r.gpus:g}", r.streams, r.windows, f"{100 * r.local:.2f}", f"{100 * r.simulated:.2f}",
         f"{r.difference_points:+.2f}", f"{r.max_window_difference_points:.2f}")
        for r in table.itertuples()
    ]
    lines += [markdown_table(
        ["scheduler", "GPUs", "streams", "windows", "local (%)", "simulated (%)", "difference (points)", "largest window difference (points)"],
        rows), ""]
    if len(table):
        lines += [f"Mean absolute difference: {table['difference_points'].abs().mean():.2f} accuracy points "
                  f"(local - simulated, mean accuracy over the common windows and the streams).", ""]
    if unmatched:
        lines += ["Not compared:", ""] + [f"- {u}" for u in unmatched] + [""]
    return "\n".join(lines)


def agreement_lines(table: pd.DataFrame, streams_windows: str = "") -> list[str]:
    """One line for the headline (``reports/headline.md``): the difference of each point."""
    if not len(table):
        return []
    parts = [f"{r.label} {r.difference_points:+.2f}" for r in table.itertuples()]
    extra = f" ({streams_windows})" if streams_windows else ""
    return [f"Simulator vs real execution{extra}, local - simulated mean accuracy: {', '.join(parts)} accuracy points."]


def _run_from_mlflow(run: Any, client: MlflowClient) -> LoggedRun | None:
    params = run.data.params
    executor, scheduler = params.get("executor.name"), params.get("scheduler.name")
    if executor is None or scheduler is None:
        return None
    history = client.get_metric_history(run.info.run_id, WINDOW_METRIC)
    if not history:
        return None
    return LoggedRun(
        executor=executor,
        label=scheduler_label(scheduler, params.get("scheduler.retrain_config"), params.get("scheduler.inference_share"),
                                 params.get("scheduler.variant")),
        gpus=float(params.get("resolved.gpus", params.get("gpus", "nan"))),
        streams=int(float(params.get("resolved.streams", "0"))),
        window_accuracy={int(m.step): float(m.value) for m in history},
        run_id=run.info.run_id,
    )


def load_agreement_runs(tracking_uri: str, experiment: str, parent_run_id: str) -> list[LoggedRun]:
    """The child runs of sweep ``parent_run_id`` that logged per-window accuracy."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise EkyaError(f"no MLflow experiment {experiment!r} in {tracking_uri}")
    children = client.search_runs([found.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000)
    runs = [_run_from_mlflow(run, client) for run in children]
    return [run for run in runs if run is not None]


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
