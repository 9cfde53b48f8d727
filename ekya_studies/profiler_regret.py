"""What the micro-profiler's estimation error costs in decisions: regret against the oracle, and the chained fidelity.

A *job* is a window-loop config (the ``make run`` job, a paper-regime job). It runs with each
*variant* of the estimation (``profiler=micro``; micro with the online correction of
:mod:`ekya.profiling.correction`; ``profiler=oracle``, exact outcomes at no cost;
``profiler=holdout_oracle``, a perfect micro-profiler) at each seed, all as children of one MLflow
sweep per job (``conf/profiler_regret.yaml``; the entry point is ``flows.profiler_regret``), each
tagged with its variant's name (:data:`VARIANT_TAG`). Then:

- **regret**: per seed and window, the oracle's mean accuracy minus the variant's, in accuracy
  points (:func:`regret_table`, :func:`regret_summary`): what estimation costs end to end, split
  into estimation and drift where the holdout oracle ran;
- **chained fidelity**: the micro runs audit every configuration (``profiler.audit=true``): each
  window's estimates beside the truth of fully retraining every configuration *from the model the
  loop really serves*, and what the served and retrained models then reached on the window
  (:func:`chained_errors`, :func:`chained_summary`), so errors that compound through the loop show.

Accuracies are fractions in [0, 1] inside; tables print them in % and errors in accuracy points.
"""

from __future__ import annotations

import json
import os
import tempfile
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
from ekya_studies.report import WINDOW_METRIC, log_report, markdown_table  # noqa: E402

#: The variant every other is measured against.
REFERENCE_VARIANT = "oracle"
#: The perfect micro-profiler (exact on window k-1's validation set): the part of the regret it leaves is drift.
HOLDOUT_VARIANT = "holdout_oracle"
#: Tag of a run with its variant's name in the plan (``variants:``); runs without it are labeled by :func:`variant_label`.
VARIANT_TAG = "ekya.variant"
#: Columns of :func:`regret_table`.
REGRET_COLUMNS = ("variant", "seed", "window", "accuracy", "reference_accuracy", "regret_points")
#: Columns of :func:`chained_errors`.
ERROR_COLUMNS = ("seed", "window", "stream", "kind", "config", "chosen", "estimated", "true", "error_points")


@dataclass(frozen=True)
class RegretRun:
    """One logged run of a job, as the study reads it back.

    Attributes:
        variant: the plan's name of the estimation, e.g. ``micro``, ``micro_corrected``, ``oracle`` (:data:`VARIANT_TAG`).
        seed: the run's seed.
        window_accuracy: window -> mean accuracy over the streams (fraction).
        estimation: window -> stream -> the window's estimation record (``schedule.json``'s ``estimation``).
        decision_seconds: the scheduler's decision time over the run, seconds (wall clock: reported, never compared).
        run_id: the MLflow run.
        profile_share: window -> GPU-seconds the estimation charged (every stream) over the window's GPU-seconds.
    """

    variant: str
    seed: int
    window_accuracy: dict[int, float]
    estimation: dict[int, dict[str, dict]] = field(default_factory=dict)
    decision_seconds: float = float("nan")
    run_id: str = ""
    profile_share: dict[int, float] = field(default_factory=dict)


def variant_label(params: dict[str, str]) -> str:
    """The variant of a run without a :data:`VARIANT_TAG`, from its logged params: the profiler's name, and
    ``micro_corrected`` for the micro-profiler with a correction (the names of ``conf/profiler_regret.yaml``)."""
    name = params.get("profiler.name", "?")
    correction = params.get("profiler.correction", "none")
    return "micro_corrected" if name == "micro" and correction not in ("none", "None", "") else name


def _variant_of(tag: str | None, params: dict[str, str]) -> str:
    """A run's variant: its tag (the plan's name), else read from its params."""
    return variant_label(params) if tag is None else tag


# -- regret --------------------------------------------------------------------------------------
def regret_table(runs: Iterable[RegretRun], reference: str = REFERENCE_VARIANT) -> pd.DataFrame:
    """Per variant, seed and window: its accuracy, the reference's at the same seed and window, and the regret
    (reference - variant, accuracy points). Windows or seeds the reference did not run are left out."""
    runs = list(runs)
    references = {run.seed: run for run in runs if run.variant == reference}
    rows = []
    for run in runs:
        base = references.get(run.seed)
        if base is None:
            continue
        for window in sorted(set(run.window_accuracy) & set(base.window_accuracy)):
            accuracy, reference_accuracy = run.window_accuracy[window], base.window_accuracy[window]
            rows.append({"variant": run.variant, "seed": run.seed, "window": window, "accuracy": accuracy,
                         "reference_accuracy": reference_accuracy, "regret_points": 100 * (reference_accuracy - accuracy)})
    return pd.DataFrame(rows, columns=list(REGRET_COLUMNS))


def regret_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean accuracy, regret per seed (over its windows) and on average, and the worst window's regret."""
    rows = []
    for variant, part in table.groupby("variant", sort=False):
        per_seed = part.groupby("seed")["regret_points"].mean()
        rows.append({"variant": variant, "accuracy": part["accuracy"].mean(), "regret_points": part["regret_points"].mean(),
                     "worst_window_regret_points": part["regret_points"].max(),
                     **{f"regret_seed_{seed}": value for seed, value in per_seed.items()}})
    return pd.DataFrame(rows)


def per_window_regret(table: pd.DataFrame) -> pd.DataFrame:
    """Mean regret (accuracy points) over seeds, one row per variant, one column per window."""
    return table.pivot_table(index="variant", columns="window", values="regret_points", aggfunc="mean", sort=False)


# -- chained fidelity ----------------------------------------------------------------------------
def chained_errors(runs: Iterable[RegretRun]) -> pd.DataFrame:
    """Every estimate of the audited runs beside its truth (fractions; error = estimate - truth, accuracy points).

    Rows of kind ``config``: each kept configuration's estimate (as the scheduler saw it) against fully
    retraining it from the served model (``true``: its accuracy on the window); ``chosen`` marks the
    configuration whose model took over. Kind ``serving``: the serving model's estimate against what it
    reached on the window. Runs without an audit contribute their serving and chosen rows only.
    """
    rows = []
    for run in runs:
        for window, streams in sorted(run.estimation.items()):
            for stream, record in sorted(streams.items()):
                if "serving_realized_accuracy" in record:
                    estimated, true = record["serving_estimated_accuracy"], record["serving_realized_accuracy"]
                    rows.append({"seed": run.seed, "window": window, "stream": stream, "kind": "serving", "config": "",
                                 "chosen": record.get("retrained") is None, "estimated": estimated, "true": true,
                                 "error_points": 100 * (estimated - true)})
                truths = record.get("true_accuracy")
                for k, name in enumerate(record["configs"]):
                    chosen = record.get("retrained") == name
                    if truths is not None:
                        true = truths[k]
                    elif chosen and "retrained_realized_accuracy" in record:
                        true = record["retrained_realized_accuracy"]
                    else:
                        continue
                    estimated = record["estimated_accuracy"][k]
                    rows.append({"seed": run.seed, "window": window, "stream": stream, "kind": "config", "config": name,
                                 "chosen": chosen, "estimated": estimated, "true": true, "error_points": 100 * (estimated - true)})
    return pd.DataFrame(rows, columns=list(ERROR_COLUMNS))


def chained_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per window: median absolute error of every configuration's estimate, of the chosen ones', and of the serving
    model's; and the mean signed error (bias) of every configuration's (accuracy points)."""
    rows = []
    for window, part in errors.groupby("window"):
        configs, serving = part[part["kind"] == "config"], part[part["kind"] == "serving"]
        chosen = configs[configs["chosen"]]
        rows.append({
            "window": window,
            "configs": len(configs),
            "median_abs_error_points": configs["error_points"].abs().median(),
            "bias_points": configs["error_points"].mean(),
            "chosen_median_abs_error_points": chosen["error_points"].abs().median() if len(chosen) else float("nan"),
            "serving_median_abs_error_points": serving["error_points"].abs().median() if len(serving) else float("nan"),
        })
    return pd.DataFrame(rows)


# -- output ----------------------------------------------------------------------------------------
def _points(value: float, sign: bool = False) -> str:
    return "" if pd.isna(value) else (f"{value:+.2f}" if sign else f"{value:.2f}")


def _decomposition_lines(runs: Sequence[RegretRun], seeds: list[int]) -> list[str]:
    """The regret split into estimation (against the perfect micro-profiler) and drift (it against the oracle), over
    the seeds the holdout oracle ran."""
    held = {run.seed for run in runs if run.variant == HOLDOUT_VARIANT}
    runs = [run for run in runs if run.seed in held]
    seeds = [seed for seed in seeds if seed in held]
    holdout, summary = regret_summary(regret_table(runs, HOLDOUT_VARIANT)), regret_summary(regret_table(runs))
    if not len(holdout) or not len(summary):
        return []
    against_oracle = summary.set_index("variant")["regret_points"]
    drift = against_oracle.get(HOLDOUT_VARIANT, np.nan)
    rows = [(r["variant"], _points(against_oracle.get(r["variant"], np.nan), True), _points(r["regret_points"], True),
             _points(drift, True), *[_points(r.get(f"regret_seed_{s}", np.nan), True) for s in seeds])
            for _, r in holdout.iterrows() if r["variant"] not in (REFERENCE_VARIANT, HOLDOUT_VARIANT)]
    return ["### Where the regret comes from", "",
            f"`{HOLDOUT_VARIANT}` is a perfect micro-profiler: every configuration fully retrained on window k-1 without the "
            "validation set and measured on it. Regret against the oracle = estimation (the variant against it) + drift "
            "(it against the oracle: what no estimate made on window k-1 can know). Accuracy points, mean over the seeds "
            f"the holdout oracle ran ({', '.join(map(str, seeds))}).", "",
            markdown_table(["variant", "regret vs oracle", "estimation: vs holdout oracle", "drift: holdout oracle vs oracle",
                            *[f"estimation seed {s}" for s in seeds]], rows), ""]


def regret_markdown(job: str, runs: Sequence[RegretRun], note: str = "") -> str:
    """``summary.md`` of one job: the regret table, regret per window, the chained fidelity and decision times."""
    table = regret_table(runs)
    summary = regret_summary(table)
    seeds = sorted({run.seed for run in runs})
    lines = [f"# Micro-profiler decisions: {job}", ""]
    if note:
        lines += [note, ""]
    lines += ["## Regret against the oracle", "",
              "Regret = the oracle's mean accuracy minus the variant's, in accuracy points (same seed, same windows); "
              "positive: accuracy lost to estimation.", ""]
    if not len(table):
        lines += [f"No finished {REFERENCE_VARIANT} run: regret is not measured.", ""]
    else:
        header = ["variant", "mean accuracy (%)", *[f"regret seed {s}" for s in seeds], "mean regret", "worst window"]
        rows = [(r["variant"], f"{100 * r['accuracy']:.2f}", *[_points(r.get(f"regret_seed_{s}", np.nan), True) for s in seeds],
                 _points(r["regret_points"], True), _points(r["worst_window_regret_points"], True)) for _, r in summary.iterrows()]
        lines += [markdown_table(header, rows), ""]
    lines += _decomposition_lines(runs, seeds)
    by_window = per_window_regret(table) if len(table) else pd.DataFrame()
    if len(by_window):
        lines += ["Regret per window (mean over seeds, accuracy points):", "",
                  markdown_table(["variant", *[f"window {w}" for w in by_window.columns]],
                                 [(variant, *[_points(v, True) for v in values]) for variant, values in by_window.iterrows()]), ""]
    accuracy = {run.variant: [] for run in runs}
    for run in runs:
        accuracy[run.variant].append(run)
    lines += ["Mean accuracy per seed (%):", "",
              markdown_table(["variant", *[f"seed {s}" for s in seeds]],
                             [(variant, *[next((f"{100 * np.mean(list(r.window_accuracy.values())):.2f}" for r in found if r.seed == s), "")
                                          for s in seeds]) for variant, found in accuracy.items()]), ""]
    errors = chained_errors([run for run in runs if run.variant != REFERENCE_VARIANT and any(
        "true_accuracy" in record for streams in run.estimation.values() for record in streams.values())])
    if len(errors[errors["kind"] == "config"]):
        chained = chained_summary(errors)
        lines += ["## Chained fidelity (audited micro runs)", "",
                  "Every window starts from the model the loop really serves; each configuration is also retrained fully "
                  "from it (unseen by the scheduler), and estimates are compared with what they reach on the window "
                  "(drift included). Errors in accuracy points, estimate - truth.", "",
                  markdown_table(["window", "configurations", "median |error|", "bias", "chosen: median |error|",
                                  "serving model: median |error|"],
                                 [(int(r.window), int(r.configs), _points(r.median_abs_error_points), _points(r.bias_points, True),
                                   _points(r.chosen_median_abs_error_points), _points(r.serving_median_abs_error_points))
                                  for r in chained.itertuples()]), ""]
        configs = errors[errors["kind"] == "config"]
        lines += [f"Over every window: median |error| {configs['error_points'].abs().median():.2f} points over "
                  f"{len(configs)} estimates, bias {configs['error_points'].mean():+.2f}.", ""]
    shares = {variant: [share for run in runs if run.variant == variant for share in run.profile_share.values()]
              for variant in dict.fromkeys(run.variant for run in runs)}
    if any(shares.values()):
        lines += ["Estimation's charged GPU time, share of the window's GPU time (mean over windows and seeds): "
                  + ", ".join(f"{variant} {100 * np.mean(values):.1f}%" for variant, values in shares.items() if values) + ".", ""]
    times = [(run.variant, run.seed, run.decision_seconds) for run in runs if np.isfinite(run.decision_seconds)]
    if times:
        lines += ["Scheduler decision time per run (wall clock of this machine, seconds): "
                  + ", ".join(f"{variant} seed {seed} {seconds:.3f}" for variant, seed, seconds in times) + ".", ""]
    return "\n".join(lines)


def regret_figure(job: str, runs: Sequence[RegretRun]):
    """Left: mean accuracy per window of each variant (mean over seeds). Right: regret per window against the oracle."""
    table = regret_table(runs)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    variants = list(dict.fromkeys(run.variant for run in runs))
    for variant in variants:
        windows = sorted({w for run in runs if run.variant == variant for w in run.window_accuracy})
        means = [100 * np.mean([run.window_accuracy[w] for run in runs if run.variant == variant and w in run.window_accuracy])
                 for w in windows]
        left.plot(windows, means, marker="o", label=variant)
    left.set(xlabel="Retraining window", ylabel="Mean inference accuracy (%)", title=f"{job}: accuracy (mean over seeds)")
    left.legend()
    by_window = per_window_regret(table) if len(table) else pd.DataFrame()
    others = [v for v in by_window.index if v != REFERENCE_VARIANT]
    width = 0.8 / max(1, len(others))
    for k, variant in enumerate(others):
        right.bar(np.asarray(by_window.columns, dtype=float) + (k - (len(others) - 1) / 2) * width, by_window.loc[variant],
                  width=width, label=variant)
    right.axhline(0, color="black", linewidth=0.8)
    right.set(xlabel="Retraining window", ylabel="Accuracy below the oracle's (points)", title="Regret against the oracle")
    if others:
        right.legend()
    windows = sorted({w for run in runs for w in run.window_accuracy})
    for axis in (left, right):
        axis.set_xticks(windows)
    figure.tight_layout()
    return figure


def chained_figure(job: str, errors: pd.DataFrame):
    """Estimated against true accuracy of every audited estimate, by window; the chosen ones and the serving models marked."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    configs, serving = errors[errors["kind"] == "config"], errors[errors["kind"] == "serving"]
    for window, part in configs.groupby("window"):
        axis.scatter(100 * part["true"], 100 * part["estimated"], s=12, alpha=0.5, label=f"window {window}")
    chosen = configs[configs["chosen"]]
    axis.scatter(100 * chosen["true"], 100 * chosen["estimated"], s=60, facecolors="none", edgecolors="black", label="chosen")
    axis.scatter(100 * serving["true"], 100 * serving["estimated"], s=30, marker="x", color="grey", label="serving model")
    axis.plot([0, 100], [0, 100], color="black", linewidth=0.8)
    axis.set(xlabel="True accuracy on the window (%)", ylabel="Estimated accuracy (%)", xlim=(0, 100), ylim=(0, 100),
             title=f"{job}: estimates from the served model")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


# -- reading back and writing ----------------------------------------------------------------------
def _estimation_records(client: MlflowClient, run_id: str, windows: Iterable[int]) -> dict[int, dict[str, dict]]:
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"  # a bar per small file would drown the report's output
    records = {}
    with tempfile.TemporaryDirectory() as folder:
        for window in windows:
            try:
                path = client.download_artifacts(run_id, f"windows/{window}/schedule.json", folder)
            except Exception:  # noqa: BLE001 - a window logged without its record is read as having none
                continue
            estimation = json.loads(Path(path).read_text()).get("estimation")
            if estimation:
                records[window] = estimation
    return records


def finished_children(client: MlflowClient, experiment: str, parent_run_id: str) -> list:
    """The FINISHED child runs of sweep ``parent_run_id`` in ``experiment``, newest first (a variant study's runs)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise EkyaError(f"no MLflow experiment {experiment!r} in {client.tracking_uri}")
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1000,
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'FINISHED'")


def load_regret_runs(tracking_uri: str, experiment: str, parent_run_id: str, variants: Iterable[str] | None = None) -> list[RegretRun]:
    """The FINISHED children of sweep ``parent_run_id``, newest per (variant, seed); only those of ``variants``
    (None: every variant), so that a report shows what its plan defines, whatever else the sweep ran."""
    wanted = None if variants is None else set(variants)
    client = MlflowClient(tracking_uri=tracking_uri)
    children = finished_children(client, experiment, parent_run_id)
    runs: dict[tuple[str, int], RegretRun] = {}
    for child in children:
        params = child.data.params
        key = (_variant_of(child.data.tags.get(VARIANT_TAG), params), int(params.get("seed", 0)))
        if key in runs or (wanted is not None and key[0] not in wanted):
            continue
        history = client.get_metric_history(child.info.run_id, WINDOW_METRIC)
        accuracy = {int(m.step): float(m.value) for m in history}
        decisions = client.get_metric_history(child.info.run_id, "schedule_seconds_total")
        # G: the run's, else 1 (a run on the CPU); the window's GPU-seconds are T x G.
        gpus = float(params["gpus"]) if params.get("gpus", "None") != "None" else 1.0
        window_gpu_seconds = float(params.get("dataset.window_seconds", "nan")) * gpus
        profile_share = {int(m.step): m.value / window_gpu_seconds
                         for m in client.get_metric_history(child.info.run_id, "gpu_seconds/profile")}
        runs[key] = RegretRun(key[0], key[1], accuracy, _estimation_records(client, child.info.run_id, accuracy),
                              float(sum(m.value for m in decisions)) if decisions else float("nan"), child.info.run_id,
                              profile_share)
    order = {REFERENCE_VARIANT: 2}
    return sorted(runs.values(), key=lambda run: (order.get(run.variant, 0 if run.variant == "micro" else 1), run.variant, run.seed))


def write_regret(tracking_uri: str, experiment: str, job: str, parent_run_id: str, output_dir: str | Path, note: str = "",
                 variants: Iterable[str] | None = None) -> list[Path]:
    """``summary.md``, ``regret.csv``, ``chained_errors.csv`` and the figures of one job's runs of ``variants`` (None:
    every variant), in ``output_dir`` and logged to its sweep's parent run (with the regret of each variant as metrics)."""
    runs = load_regret_runs(tracking_uri, experiment, parent_run_id, variants)
    if not runs:
        raise EkyaError(f"job {job}: sweep {parent_run_id} has no finished run")
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table = regret_table(runs)
    table.to_csv(folder / "regret.csv", index=False)
    audited = [run for run in runs if run.variant != REFERENCE_VARIANT]
    errors = chained_errors(audited)
    errors.to_csv(folder / "chained_errors.csv", index=False)
    (folder / "summary.md").write_text(regret_markdown(job, runs, note))
    paths = [folder / "summary.md", folder / "regret.csv", folder / "chained_errors.csv"]
    figure = regret_figure(job, runs)
    figure.savefig(folder / "regret.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    paths.append(folder / "regret.png")
    if len(errors[errors["kind"] == "config"]):
        figure = chained_figure(job, errors)
        figure.savefig(folder / "chained.png", dpi=120, bbox_inches="tight")
        plt.close(figure)
        paths.append(folder / "chained.png")
    log_report(tracking_uri, parent_run_id, paths)
    client = MlflowClient(tracking_uri=tracking_uri)
    for _, row in regret_summary(table).iterrows():
        client.log_metric(parent_run_id, f"regret/{row['variant'].replace(' + ', '_').replace(' ', '_')}_points", float(row["regret_points"]))
    return paths


# -- the plan --------------------------------------------------------------------------------------
def build_regret_plan(options: dict[str, Any]) -> dict[str, Any]:
    """Every run of the study, composed and checked before any runs: ``options`` is the composed
    ``conf/profiler_regret.yaml`` (plain containers); composing needs Hydra's global state.

    Returns:
        :func:`ekya_studies.plan.variant_plan`'s plan, every point on the local executor.

    Raises:
        EkyaError: no oracle variant, or what :func:`~ekya_studies.plan.variant_plan` refuses.
    """
    from ekya_studies.plan import variant_plan

    variants = options["variants"] or {}
    if REFERENCE_VARIANT not in variants:
        raise EkyaError(f"variants has no {REFERENCE_VARIANT!r} entry: regret is measured against it; variants: {', '.join(variants)}")
    return variant_plan(options, ["executor=local"])


def parent_run_of(tracking_uri: str, experiment: str, sweep_dir: str) -> str:
    """The parent run of the sweep logged under ``sweep_dir`` (the study's runs of one job)."""
    from ekya.tracking.mlflow_logging import PARENT_TAG, SWEEP_TAG

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = [] if found is None else client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_dir}' and tags.`{PARENT_TAG}` = 'true'", max_results=1)
    if not runs:
        raise EkyaError(f"no sweep {sweep_dir!r} in MLflow experiment {experiment!r} ({tracking_uri}): run the job first")
    return runs[0].info.run_id
