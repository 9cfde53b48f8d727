"""Plots of a run: GPU allocation and accuracy over time per stream (the paper's Figures 4 and 9).

Both read the per-window records of :func:`ekya.execution.timeline.outcome_record`, so they can
be drawn during a run or later from the ``windows/<k>/schedule.json`` artifacts.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _timeline(records: Sequence[dict], window_seconds: float):
    """Per stream: arrays of segment start/end times (seconds since the run start) and their fields."""
    streams = list(records[0]["streams"]) if records else []
    rows = {name: [] for name in streams}
    for record in records:
        offset = record["window"] * window_seconds
        for segment in record["segments"]:
            for name in streams:
                part = segment["streams"][name]
                rows[name].append((offset + segment["start_seconds"], offset + segment["end_seconds"], part))
    return streams, rows


def allocation_figure(records: Sequence[dict], window_seconds: float, gpus: float):
    """Stacked GPU shares over time: each stream's inference (solid) and training (hatched) job."""
    streams, rows = _timeline(records, window_seconds)
    figure, axes = plt.subplots(figsize=(10, 4))
    colours = plt.get_cmap("tab10")
    for segment_index in range(len(rows[streams[0]]) if streams else 0):
        start, end, _ = rows[streams[0]][segment_index]
        bottom = 0.0
        for s, name in enumerate(streams):
            part = rows[name][segment_index][2]
            for share, hatch in ((part["inference_share"], None), (part["train_share"], "//")):
                if share > 0:
                    axes.bar(start, share, width=end - start, bottom=bottom, align="edge", color=colours(s % 10),
                             hatch=hatch, edgecolor="white", linewidth=0.3, alpha=0.9 if hatch is None else 0.55)
                    bottom += share
    for k in range(len(records) + 1):
        axes.axvline(k * window_seconds, color="black", linewidth=0.6, linestyle=":")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(s % 10)) for s in range(len(streams))]
    handles += [plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="grey", hatch="//")]
    axes.legend(handles, [f"{n}" for n in streams] + ["training (hatched)"], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes.set_xlabel("time (seconds; dotted lines: retraining windows)")
    axes.set_ylabel("GPU share (GPUs)")
    axes.set_ylim(0, gpus * 1.05)
    axes.set_title("GPU allocation over time: inference (solid) and retraining (hatched) per stream")
    figure.tight_layout()
    return figure


def accuracy_figure(records: Sequence[dict], window_seconds: float):
    """Instantaneous inference accuracy of each stream over time, with each window's mean."""
    streams, rows = _timeline(records, window_seconds)
    figure, axes = plt.subplots(figsize=(10, 4))
    colours = plt.get_cmap("tab10")
    for s, name in enumerate(streams):
        times, values = [], []
        for start, end, part in rows[name]:
            times += [start, end]
            values += [100 * part["accuracy"]] * 2
        axes.plot(times, values, color=colours(s % 10), label=name, linewidth=1.2)
    means = [100 * np.mean([r["streams"][n]["accuracy"] for n in streams]) for r in records]
    for record, mean in zip(records, means):
        k = record["window"]
        axes.hlines(mean, k * window_seconds, (k + 1) * window_seconds, colors="black", linestyles="--", linewidth=1)
    axes.plot([], [], "k--", label="window mean")
    axes.set_xlabel("time (seconds)")
    axes.set_ylabel("inference accuracy (%)")
    axes.set_ylim(0, 100)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes.set_title("Inference accuracy over time per stream")
    figure.tight_layout()
    return figure
