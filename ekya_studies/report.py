"""Reading a sweep's runs back from MLflow and turning them into the paper's figures and tables.

A Hydra multirun of ``flows.window_loop`` is one MLflow parent run with one child per point
(see :mod:`ekya.tracking.mlflow_logging`). :func:`load_sweep` reads the children into a
DataFrame with one row per run: the swept knobs, the scheduler's paper name and the mean
accuracy (``summary/accuracy_mean``, a fraction in [0, 1]). Runs without that metric (failed,
still running, or logged by something else) are skipped and listed, never fatal.

The figures plot accuracy (in %) against whichever knob the sweep varied, one line per
scheduler, with the schedulers named as in the paper ("Ekya", "Uniform (Cfg 1, 50%)", ...).
:func:`gpu_saving` and :func:`gain_at_highest_contention` compute the paper's two headline
numbers: the GPUs the best baseline needs to match Ekya, and Ekya's accuracy gain over the
best Uniform configuration where resources are scarcest. :func:`report_sweep` writes a sweep's
figures and ``summary.md`` and logs them to its parent run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from ekya.errors import EkyaError  # noqa: E402
from ekya.tracking.mlflow_logging import PARENT_TAG, SWEEP_TAG  # noqa: E402

SUMMARY_METRIC = "summary/accuracy_mean"
WINDOW_METRIC = "accuracy/mean"

#: The knobs a sweep may vary, in the order a figure picks its x axis, with axis labels (units).
X_AXES: dict[str, str] = {
    "streams": "Number of video streams",
    "gpus": "GPUs of the edge box",
    "delta": "Allocation quantum Δ (GPU share)",
    "window_seconds": "Retraining window length T (seconds)",
    "estimate_noise_std": "Noise on estimated accuracy (std, accuracy points)",
}
ACCURACY_AXIS = "Mean inference accuracy (%)"

#: Paper names of the schedulers (Uniform's depend on its configuration, see scheduler_label).
SCHEDULER_LABELS: dict[str, str] = {
    "thief": "Ekya",
    "fixed_res": "Ekya-FixedRes",
    "fixed_config": "Ekya-FixedConfig",
    "optimal": "Optimal",
    "fair": "Fair",
    "no_retrain": "No retraining",
}
REFERENCE_SCHEDULER = "thief"
#: Schedulers counted as baselines for the GPU saving factor (not Ekya, its ablations or the optimum).
BASELINE_SCHEDULERS = ("uniform", "fair", "no_retrain")
_UNIFORM_CONFIG_NAMES = {"high": "Cfg 1", "low": "Cfg 2"}
_LABEL_ORDER = ("thief", "fixed_res", "fixed_config", "optimal", "uniform", "fair", "no_retrain")
#: A point of a sweep: the runs that differ only by seed are averaged over.
POINT_COLUMNS = ("label", "dataset", *X_AXES)
#: Columns of :attr:`SweepRuns.frame`.
FRAME_COLUMNS = (
    "run_id", "run_name", "parent_run_id", "start_time", "scheduler", "label", "dataset", "seed",
    *X_AXES, "accuracy_mean", "window_accuracies",
)


def scheduler_label(scheduler: str, retrain_config: Any = None, inference_share: Any = None, variant: Any = None) -> str:
    """The scheduler's name in the paper, e.g. ``uniform, high, 0.5`` -> ``Uniform (Cfg 1, 50%)``; the thief's
    ``paper`` variant (Algorithm 1 as published) is ``Ekya (Algorithm 1)``."""
    if scheduler != "uniform":
        label = SCHEDULER_LABELS.get(scheduler, scheduler)
        return f"{label} (Algorithm 1)" if variant == "paper" else label
    config = _UNIFORM_CONFIG_NAMES.get(str(retrain_config), str(retrain_config))
    share = _number(inference_share)
    return f"Uniform ({config}, {100 * share:.0f}%)" if not math.isnan(share) else f"Uniform ({config})"


@dataclass(frozen=True)
class SkippedRun:
    """A run left out of a report, and why."""

    run_id: str
    run_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.run_name} ({self.run_id}): {self.reason}"


@dataclass
class SweepRuns:
    """The usable runs of one or more sweeps of an experiment.

    Attributes:
        experiment: MLflow experiment name.
        tracking_uri: the MLflow store.
        frame: one row per run: ``run_id, run_name, parent_run_id, start_time, scheduler,
            label, dataset, seed``, the knobs of :data:`X_AXES` (streams, gpus in GPUs, delta in
            GPU share, window_seconds in seconds, estimate_noise_std in accuracy points; NaN when
            unknown), ``accuracy_mean`` (fraction) and ``window_accuracies`` (per window, fraction).
        skipped: runs left out (no summary metric, no scheduler ...).
        parent_run_ids: the sweeps read, newest first; reports are logged to the first.
    """

    experiment: str
    tracking_uri: str
    frame: pd.DataFrame
    skipped: list[SkippedRun] = field(default_factory=list)
    parent_run_ids: list[str] = field(default_factory=list)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _first_number(params: dict[str, str], *keys: str) -> float:
    for key in keys:
        value = _number(params.get(key))
        if not math.isnan(value):
            return value
    return math.nan


def run_row(run: Any, client: MlflowClient) -> dict[str, Any] | SkippedRun:
    """One MLflow run as a report row, or why it cannot be one."""
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    name = tags.get("mlflow.runName", run.info.run_id)
    scheduler = params.get("scheduler.name")
    if scheduler is None:
        return SkippedRun(run.info.run_id, name, "no scheduler.name param (not a window-loop run)")
    if SUMMARY_METRIC not in metrics:
        return SkippedRun(run.info.run_id, name, f"no {SUMMARY_METRIC} metric (status {run.info.status})")
    per_stream = [k for k in metrics if k.startswith("accuracy/") and k != WINDOW_METRIC]
    streams = _first_number(params, "resolved.streams", "streams")
    history = sorted(client.get_metric_history(run.info.run_id, WINDOW_METRIC), key=lambda m: m.step)
    return {
        "run_id": run.info.run_id,
        "run_name": name,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "start_time": run.info.start_time,
        "scheduler": scheduler,
        "label": scheduler_label(scheduler, params.get("scheduler.retrain_config"), params.get("scheduler.inference_share"),
                                 params.get("scheduler.variant")),
        "dataset": tags.get("dataset", params.get("dataset.name", "")),
        "seed": _first_number(params, "seed"),
        "streams": streams if not math.isnan(streams) else float(len(per_stream)),
        "gpus": _first_number(params, "resolved.gpus", "gpus"),
        "delta": _first_number(params, "resolved.delta", "delta"),
        "window_seconds": _first_number(params, "resolved.window_seconds", "executor.window_seconds"),
        "estimate_noise_std": _first_number(params, "profiler.noise_std"),
        "accuracy_mean": float(metrics[SUMMARY_METRIC]),
        "window_accuracies": [m.value for m in history],
    }


def _experiment_names(client: MlflowClient) -> list[str]:
    return sorted(e.name for e in client.search_experiments())


def sweep_parents(client: MlflowClient, experiment_id: str) -> list[Any]:
    """Parent runs of the experiment's multiruns, newest first."""
    return client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = 'true'", order_by=["attributes.start_time DESC"], max_results=1000
    )


def select_sweeps(tracking_uri: str, experiment: str, parent_run_id: str | None = None, all_sweeps: bool = True) -> list[str]:
    """Parent run ids of the sweeps a report reads, newest first (see :func:`load_sweep`).

    Raises:
        EkyaError: no such experiment (lists those that exist), no sweep in it (lists the
            experiments that have one), or an unknown parent run id (lists the experiment's sweeps).
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = _experiment_names(client)
        raise EkyaError(
            f"no MLflow experiment {experiment!r} in {tracking_uri}; experiments that exist: {', '.join(names) or 'none'}"
        )
    parents = sweep_parents(client, found.experiment_id)
    if not parents:
        with_sweeps = [name for name in _experiment_names(client) if _has_sweep(client, name)]
        raise EkyaError(
            f"MLflow experiment {experiment!r} in {tracking_uri} has no sweep (run it with `python -m flows.window_loop -m ...`); "
            f"experiments with sweeps: {', '.join(with_sweeps) or 'none'}"
        )
    if parent_run_id is not None:
        if parent_run_id not in {p.info.run_id for p in parents}:
            valid = ", ".join(f"{p.info.run_id} ({p.data.tags.get(SWEEP_TAG, '')})" for p in parents)
            raise EkyaError(f"no sweep with parent run id {parent_run_id!r} in experiment {experiment!r}; sweeps: {valid}")
        return [parent_run_id]
    ids = [p.info.run_id for p in parents]
    return ids if all_sweeps else ids[:1]


def load_sweep(tracking_uri: str, experiment: str, parent_run_id: str | None = None, all_sweeps: bool = True) -> SweepRuns:
    """The child runs of an experiment's sweeps, as a :class:`SweepRuns`.

    Args:
        tracking_uri: MLflow store, e.g. ``sqlite:///mlruns/mlflow.db``.
        experiment: MLflow experiment name (an ``experiment=<name>`` yaml sets it).
        parent_run_id: read only this sweep (its parent run's id).
        all_sweeps: without ``parent_run_id``: True reads every sweep of the experiment and keeps
            the newest run of each point (so a study run as several multiruns, e.g. the policies
            and then Uniform's configurations, reads as one); False reads only the newest sweep.

    Raises:
        EkyaError: as :func:`select_sweeps`.
    """
    parents = select_sweeps(tracking_uri, experiment, parent_run_id, all_sweeps)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    rows, skipped = [], []
    for parent in parents:
        children = client.search_runs(
            [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10000
        )
        for run in children:
            row = run_row(run, client)
            (skipped if isinstance(row, SkippedRun) else rows).append(row)
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    if len(frame):
        frame = frame.sort_values("start_time", ascending=False)
        frame = frame.drop_duplicates(subset=[*POINT_COLUMNS, "seed"], keep="first").reset_index(drop=True)
    return SweepRuns(experiment, tracking_uri, frame, skipped, parents)


def _has_sweep(client: MlflowClient, name: str) -> bool:
    found = client.get_experiment_by_name(name)
    return found is not None and bool(
        client.search_runs([found.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = 'true'", max_results=1)
    )


# ---------------------------------------------------------------------------------------------
# Tables and headline numbers


def swept_axes(frame: pd.DataFrame) -> list[str]:
    """The knobs of :data:`X_AXES` that take more than one value in ``frame``, in axis order."""
    return [axis for axis in X_AXES if axis in frame and frame[axis].nunique(dropna=True) > 1]


def label_rank(frame: pd.DataFrame) -> dict[str, tuple]:
    """Sort key per label: Ekya first, then its ablations, the optimum, the baselines."""
    keys = {}
    for label, scheduler in frame[["label", "scheduler"]].drop_duplicates().itertuples(index=False):
        rank = _LABEL_ORDER.index(scheduler) if scheduler in _LABEL_ORDER else len(_LABEL_ORDER)
        keys[label] = (rank, label)
    return keys


def accuracy_table(frame: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean accuracy (fraction, averaged over seeds) per label (rows) and value of ``x`` (columns)."""
    table = frame.pivot_table(index="label", columns=x, values="accuracy_mean", aggfunc="mean")
    order = label_rank(frame)
    return table.loc[sorted(table.index, key=lambda label: order[label])]


def panels(frame: pd.DataFrame) -> list[tuple[str | None, dict[str, float], pd.DataFrame]]:
    """Splits ``frame`` into one panel per value of the swept knobs other than the x axis.

    Returns:
        ``(x, fixed, part)`` triples: the x axis (None when nothing was swept), the values of the
        other swept knobs in this panel, and its rows.
    """
    axes = swept_axes(frame)
    if not axes:
        return [(None, {}, frame)]
    x, others = axes[0], axes[1:]
    if not others:
        return [(x, {}, frame)]
    return [
        (x, dict(zip(others, values if isinstance(values, tuple) else (values,))), part)
        for values, part in frame.groupby(others if len(others) > 1 else others[0], sort=True)
    ]


@dataclass(frozen=True)
class GpuSaving:
    """How many GPUs the best baseline needs to match Ekya's accuracy at one GPU count.

    Attributes:
        gpus: GPUs Ekya has.
        accuracy: Ekya's mean accuracy there (fraction).
        baseline: the baseline that needs the fewest GPUs (None: none reaches it in the sweep).
        baseline_gpus: the GPUs it needs, interpolated linearly between swept GPU counts.
        factor: ``baseline_gpus / gpus`` (None when no baseline reaches Ekya's accuracy).
        factor_above: when ``factor`` is None: the sweep's largest GPU count / ``gpus``, a lower
            bound of the factor.
    """

    gpus: float
    accuracy: float
    baseline: str | None
    baseline_gpus: float | None
    factor: float | None
    factor_above: float | None = None


def gpus_to_reach(gpus: Sequence[float], accuracy: Sequence[float], target: float) -> float | None:
    """GPUs at which the curve ``accuracy(gpus)`` first reaches ``target``, linearly interpolated.

    None when it never does within the swept range. At or below the smallest GPU count the
    smallest count is returned (no extrapolation).
    """
    order = np.argsort(np.asarray(gpus, dtype=float))
    g = np.asarray(gpus, dtype=float)[order]
    a = np.asarray(accuracy, dtype=float)[order]
    reached = np.flatnonzero(a >= target)
    if not len(reached):
        return None
    i = int(reached[0])
    if i == 0:
        return float(g[0])
    return float(g[i - 1] + (target - a[i - 1]) * (g[i] - g[i - 1]) / (a[i] - a[i - 1]))


def gpu_saving(frame: pd.DataFrame, baselines: Iterable[str] = BASELINE_SCHEDULERS) -> list[GpuSaving]:
    """For every GPU count Ekya was run at: the GPUs the best baseline needs to match it.

    ``frame`` holds one panel of a GPU sweep (other knobs fixed); runs are averaged over seeds.
    Empty when Ekya or every baseline is missing, or fewer than two GPU counts were swept.
    """
    if "gpus" not in swept_axes(frame):
        return []
    table = accuracy_table(frame, "gpus")
    reference = SCHEDULER_LABELS[REFERENCE_SCHEDULER]
    candidates = sorted(set(frame.loc[frame["scheduler"].isin(tuple(baselines)), "label"]))
    if reference not in table.index or not candidates:
        return []
    savings = []
    for gpus, accuracy in table.loc[reference].dropna().items():
        needed = {}
        for label in candidates:
            curve = table.loc[label].dropna()
            reach = gpus_to_reach(curve.index.to_numpy(float), curve.to_numpy(float), accuracy)
            if reach is not None:
                needed[label] = reach
        if needed:
            best = min(needed, key=needed.get)
            savings.append(GpuSaving(float(gpus), float(accuracy), best, needed[best], needed[best] / float(gpus)))
        else:
            largest = float(frame.loc[frame["label"].isin(candidates), "gpus"].max())
            savings.append(GpuSaving(float(gpus), float(accuracy), None, None, None, largest / float(gpus)))
    return savings


@dataclass(frozen=True)
class ContentionGain:
    """Ekya vs the best Uniform configuration at the sweep's highest-contention point.

    Attributes:
        point: the knob values of that point (streams, gpus, ...).
        streams_per_gpu: its contention.
        accuracy: Ekya's mean accuracy (fraction).
        best_uniform: the most accurate Uniform configuration there.
        best_uniform_accuracy: its mean accuracy (fraction).
        gain_points: ``accuracy - best_uniform_accuracy`` in accuracy points (0-100 scale).
    """

    point: dict[str, float]
    streams_per_gpu: float
    accuracy: float
    best_uniform: str
    best_uniform_accuracy: float
    gain_points: float


def gain_at_highest_contention(frame: pd.DataFrame) -> ContentionGain | None:
    """Ekya's gain over the best Uniform at the point with the most streams per GPU.

    Among points where both were run (seeds averaged); ties go to the first point in knob
    order. None when the sweep lacks Ekya or Uniform.
    """
    axes = [a for a in X_AXES if a in frame]
    means = frame.groupby(["label", "scheduler", *axes], dropna=False)["accuracy_mean"].mean().reset_index()
    ekya = means[means["scheduler"] == REFERENCE_SCHEDULER]
    uniform = means[means["scheduler"] == "uniform"]
    if ekya.empty or uniform.empty:
        return None
    best = None
    for _, row in ekya.sort_values(axes).iterrows():
        same = np.ones(len(uniform), dtype=bool)
        for axis in axes:
            same &= (uniform[axis].to_numpy() == row[axis]) | (uniform[axis].isna().to_numpy() & pd.isna(row[axis]))
        rivals = uniform[same]
        if rivals.empty:
            continue
        contention = row["streams"] / row["gpus"]
        if best is None or contention > best[0]:
            top = rivals.loc[rivals["accuracy_mean"].idxmax()]
            best = (contention, row, top)
    if best is None:
        return None
    contention, row, top = best
    shown = ["streams", "gpus", *(a for a in swept_axes(frame) if a not in ("streams", "gpus"))]
    point = {a: float(row[a]) for a in shown if not pd.isna(row[a])}
    return ContentionGain(point, float(contention), float(row["accuracy_mean"]), str(top["label"]), float(top["accuracy_mean"]),
                          100 * (float(row["accuracy_mean"]) - float(top["accuracy_mean"])))


# ---------------------------------------------------------------------------------------------
# Figures


def _format_value(value: float) -> str:
    return f"{value:g}"


def panel_name(x: str | None, fixed: dict[str, float]) -> str:
    """File stem of a panel's figure, e.g. ``accuracy_vs_streams_gpus_2``."""
    if x is None:
        return "accuracy_by_scheduler"
    return "_".join([f"accuracy_vs_{x}", *(f"{k}_{_format_value(v)}" for k, v in fixed.items())])


def _title(experiment: str, fixed: dict[str, float]) -> str:
    return experiment + (" (" + ", ".join(f"{k}={_format_value(v)}" for k, v in fixed.items()) + ")" if fixed else "")


def accuracy_figure(frame: pd.DataFrame, x: str | None, title: str = "") -> plt.Figure:
    """Mean accuracy (%) vs ``x``, one line per scheduler; a bar per scheduler when ``x`` is None."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    if x is None:
        means = frame.groupby("label")["accuracy_mean"].mean()
        order = label_rank(frame)
        labels = sorted(means.index, key=lambda label: order[label])
        axes.bar(range(len(labels)), [100 * means[label] for label in labels], color="tab:blue")
        axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axes.set_xlabel("Scheduler")
    else:
        table = accuracy_table(frame, x)
        for label, curve in table.iterrows():
            curve = curve.dropna()
            ekya = label == SCHEDULER_LABELS[REFERENCE_SCHEDULER]
            style = "--" if label.startswith("Uniform") else ":" if label == SCHEDULER_LABELS["no_retrain"] else "-"
            axes.plot(curve.index.to_numpy(float), 100 * curve.to_numpy(float), marker="o", linestyle=style,
                      linewidth=2.5 if ekya else 1.4, zorder=3 if ekya else 2, label=label)
        axes.set_xlabel(X_AXES[x])
        axes.legend(fontsize="small")
    axes.set_ylabel(ACCURACY_AXIS)
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------------------------
# Markdown


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def _percent(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.2f}"


def _table_markdown(frame: pd.DataFrame, x: str | None) -> str:
    if x is None:
        means = frame.groupby("label")["accuracy_mean"].mean()
        order = label_rank(frame)
        return markdown_table(["scheduler", "accuracy (%)"], [(label, _percent(means[label])) for label in sorted(means.index, key=lambda k: order[k])])
    table = accuracy_table(frame, x)
    header = [f"scheduler \\ {x}", *(_format_value(v) for v in table.columns)]
    return markdown_table(header, [(label, *(_percent(v) for v in row)) for label, row in table.iterrows()])


def summary_markdown(runs: SweepRuns, figures: dict[str, str] | None = None) -> str:
    """The report's ``summary.md``: accuracy tables per panel, headline numbers, skipped runs.

    Args:
        runs: the sweep's runs.
        figures: panel file stem -> PNG file name, to link each table to its figure.
    """
    frame = runs.frame
    lines = [f"# {runs.experiment}", "",
             f"{len(frame)} runs from {len(runs.parent_run_ids)} sweep(s) ({', '.join(runs.parent_run_ids)}) in `{runs.tracking_uri}`.",
             "Mean inference accuracy (%) over windows and streams; runs differing only by seed are averaged.", ""]
    if len(frame):
        for x, fixed, part in panels(frame):
            name = panel_name(x, fixed)
            lines += [f"## {_title('Accuracy' + (f' vs {x}' if x else ''), fixed)}", ""]
            if figures and name in figures:
                lines += [f"![{name}]({figures[name]})", ""]
            lines += [_table_markdown(part, x), ""]
            savings = gpu_saving(part) if x == "gpus" else []
            if savings:
                lines += _saving_markdown(savings)
        gain = gain_at_highest_contention(frame)
        if gain is not None:
            where = ", ".join(f"{k}={_format_value(v)}" for k, v in gain.point.items())
            lines += ["## Ekya vs the best Uniform at the highest contention", "",
                      f"At {where} ({gain.streams_per_gpu:g} streams per GPU): Ekya {100 * gain.accuracy:.2f}% vs "
                      f"{gain.best_uniform} {100 * gain.best_uniform_accuracy:.2f}%: **{gain.gain_points:+.2f} accuracy points**.", ""]
    else:
        lines += ["No usable runs.", ""]
    if runs.skipped:
        lines += [f"## Skipped runs ({len(runs.skipped)})", ""] + [f"- {s}" for s in runs.skipped] + [""]
    return "\n".join(lines)


def _saving_markdown(savings: list[GpuSaving]) -> list[str]:
    rows = [
        (_format_value(s.gpus), _percent(s.accuracy), s.baseline or "none reaches it",
         f"{s.baseline_gpus:.2f}" if s.baseline_gpus is not None else "> swept range",
         f"{s.factor:.2f}x" if s.factor is not None else f"> {s.factor_above:.2f}x")
        for s in savings
    ]
    lines = ["### GPU saving factor", "",
             "GPUs the best baseline needs to match Ekya's accuracy (linear interpolation between swept GPU counts).", "",
             markdown_table(["Ekya GPUs", "Ekya accuracy (%)", "best baseline", "baseline GPUs", "factor"], rows), ""]
    finite = [s for s in savings if s.factor is not None]
    if finite:
        top = max(finite, key=lambda s: s.factor)
        lines += [f"Headline: the best baseline needs **{top.factor:.2f}x** the GPUs to match Ekya with {top.gpus:g} GPU(s) (the paper: 4x).", ""]
    return lines


def report_figures(runs: SweepRuns) -> dict[str, plt.Figure]:
    """Panel file stem -> figure, one per panel of the sweep."""
    if not len(runs.frame):
        return {}
    return {panel_name(x, fixed): accuracy_figure(part, x, _title(runs.experiment, fixed)) for x, fixed, part in panels(runs.frame)}


# ---------------------------------------------------------------------------------------------
# Output


def write_report(runs: SweepRuns, output_dir: str | Path) -> list[Path]:
    """Writes one PNG per panel and ``summary.md`` into ``output_dir``; returns their paths."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written, names = [], {}
    for name, figure in report_figures(runs).items():
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
        names[name] = path.name
    summary = folder / "summary.md"
    summary.write_text(summary_markdown(runs, names))
    return [*written, summary]


def log_report(tracking_uri: str, run_id: str, paths: Iterable[str | Path], artifact_dir: str = "report") -> None:
    """Logs files as artifacts of run ``run_id`` (a sweep's parent run), under ``artifact_dir``."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_dir)


def publish_report(runs: SweepRuns, paths: Sequence[Path], output_dir: str | Path, log_to_mlflow: bool = True) -> None:
    """After :func:`write_report`: list the skipped runs, log the files to the newest sweep's parent run, say what was written."""
    for skipped in runs.skipped:
        print(f"skipped {skipped}", flush=True)
    if log_to_mlflow:
        log_report(runs.tracking_uri, runs.parent_run_ids[0], paths)
    print(f"{len(runs.frame)} runs of {len(runs.parent_run_ids)} sweep(s), {len(runs.skipped)} skipped; "
          f"wrote {', '.join(p.name for p in paths)} to {output_dir}", flush=True)


def report_sweep(
    tracking_uri: str,
    experiment: str,
    output_dir: str,
    parent_run_id: str | None = None,
    all_sweeps: bool = True,
    log_to_mlflow: bool = True,
) -> list[Path]:
    """The report of ``experiment``'s sweeps (see :func:`load_sweep`) in ``output_dir``, logged to MLflow; returns the files.

    Raises:
        EkyaError: as :func:`select_sweeps`.
    """
    runs = load_sweep(tracking_uri, experiment, parent_run_id, all_sweeps)
    paths = write_report(runs, output_dir)
    publish_report(runs, paths, output_dir, log_to_mlflow)
    return paths
