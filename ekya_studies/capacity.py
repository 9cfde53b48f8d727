"""Capacity of an edge box (the paper's Table 2): how many streams G GPUs hold at an accuracy target.

Reads the rows of a streams x GPUs sweep (:func:`ekya_studies.report.load_sweep`) and, per
scheduler and GPU count, picks the largest stream count whose mean accuracy reaches the target.
:func:`write_capacity` does it for an experiment's sweeps in MLflow and writes ``capacity.md``
and ``capacity.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ekya.errors import EkyaError
from ekya_studies.report import label_rank, load_sweep, markdown_table

REQUIRED_COLUMNS = ("label", "scheduler", "streams", "gpus", "accuracy_mean")


def capacity_table(frame: pd.DataFrame, accuracy_target: float, gpus: float | None = None) -> pd.DataFrame:
    """Streams each scheduler sustains per GPU count at ``accuracy_target``.

    Args:
        frame: one row per run with ``label, scheduler, streams, gpus, accuracy_mean`` (accuracy
            as a fraction); runs of the same point (e.g. seeds) are averaged.
        accuracy_target: minimum mean accuracy, a fraction in [0, 1].
        gpus: only this GPU count (None: every swept count).

    Returns:
        Labels (rows) x GPU counts (columns): the largest swept stream count whose mean accuracy
        is >= the target; 0 when none is.

    Raises:
        EkyaError: a target outside [0, 1], missing columns, or a GPU count the sweep lacks.
    """
    if not 0 <= accuracy_target <= 1:
        raise EkyaError(f"accuracy target must be a fraction in [0, 1], got {accuracy_target}")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise EkyaError(f"capacity needs columns {', '.join(REQUIRED_COLUMNS)}; missing: {', '.join(missing)}")
    if gpus is not None:
        swept = sorted(frame["gpus"].dropna().unique())
        if float(gpus) not in swept:
            raise EkyaError(f"gpus={gpus:g} was not swept; swept GPU counts: {', '.join(f'{g:g}' for g in swept)}")
        frame = frame[frame["gpus"] == float(gpus)]
    means = frame.groupby(["label", "gpus", "streams"])["accuracy_mean"].mean().reset_index()
    reached = means[means["accuracy_mean"] >= accuracy_target]
    capacity = reached.groupby(["label", "gpus"])["streams"].max().unstack("gpus")
    labels = sorted(means["label"].unique(), key=lambda label: label_rank(frame)[label])
    columns = sorted(means["gpus"].unique())
    return capacity.reindex(index=labels, columns=columns).fillna(0).astype(int)


def capacity_markdown(table: pd.DataFrame, accuracy_target: float, max_streams: float | None = None) -> str:
    """``table`` as Markdown; a count equal to ``max_streams`` (the sweep's largest) reads ``>= n``."""
    def cell(value: int) -> str:
        return f">= {value}" if max_streams is not None and value >= max_streams else str(value)

    header = ["scheduler \\ GPUs", *(f"{g:g}" for g in table.columns)]
    rows = [(label, *(cell(int(v)) for v in row)) for label, row in table.iterrows()]
    return "\n".join([
        f"Streams sustained at a mean accuracy >= {100 * accuracy_target:.1f}% (largest swept stream count that reaches it).",
        "",
        markdown_table(header, rows),
    ])


def write_capacity(tracking_uri: str, experiment: str, accuracy_target: float, output_dir: str,
                   gpus: float | None = None, all_sweeps: bool = True) -> Path:
    """Write ``capacity.md`` and ``capacity.csv`` for ``experiment``'s sweeps; returns the Markdown file.

    Raises:
        EkyaError: as :func:`ekya_studies.report.select_sweeps`, no run with a summary metric, or
            as :func:`capacity_table`.
    """
    runs = load_sweep(tracking_uri, experiment, all_sweeps=all_sweeps)
    if not len(runs.frame):
        raise EkyaError(f"experiment {experiment!r} has no run with a summary metric; skipped: {'; '.join(map(str, runs.skipped))}")
    table = capacity_table(runs.frame, accuracy_target, gpus)
    text = capacity_markdown(table, accuracy_target, max_streams=runs.frame["streams"].max())
    if runs.skipped:
        text += "\n\nSkipped runs:\n" + "\n".join(f"- {s}" for s in runs.skipped)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "capacity.csv")
    (folder / "capacity.md").write_text(f"# Capacity: {experiment}\n\n{text}\n")
    print(text, flush=True)
    return folder / "capacity.md"
