"""Plot how the class mix of each stream changes over its windows (the paper's Figure 2a)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ekya.data.base import CLASSES, StreamSource
from ekya.errors import EkyaError


def class_fractions(source: StreamSource, stream: str) -> np.ndarray:
    """Fraction of crops of each class per window, shape (windows, len(CLASSES)); empty windows are all 0."""
    counts = np.array(
        [source.window(stream, k).class_counts() for k in range(source.num_windows(stream))], dtype=np.float64
    ).reshape(-1, len(CLASSES))
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_class_mix(source: StreamSource, streams: list[str] | None = None) -> Figure:
    """Per stream, stacked bars of the class distribution over windows.

    Works for any :class:`StreamSource` (it reads ``Window.class_counts()``). The figure
    uses the Agg canvas, so it never needs a display; save it with ``fig.savefig(path)``.

    Args:
        source: the dataset.
        streams: streams to plot, one axes each (default: all of ``source.streams``).

    Returns:
        A matplotlib Figure with one axes per stream, top to bottom.
    """
    chosen = list(source.streams) if streams is None else list(streams)
    if not chosen:
        raise EkyaError("plot_class_mix: no streams to plot (the source has none or an empty list was given)")
    unknown = [name for name in chosen if name not in source.streams]
    if unknown:
        raise EkyaError(f"plot_class_mix: unknown streams {unknown}; valid: {list(source.streams)}")

    figure = Figure(figsize=(7.0, 1.9 * len(chosen) + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(chosen), 1, squeeze=False)[:, 0]
    colours = [f"C{i}" for i in range(len(CLASSES))]
    for ax, stream in zip(axes, chosen):
        fractions = class_fractions(source, stream)
        windows = np.arange(len(fractions))
        bottom = np.zeros(len(fractions))
        for class_index, name in enumerate(CLASSES):
            ax.bar(windows, fractions[:, class_index], bottom=bottom, color=colours[class_index], label=name, width=0.8)
            bottom += fractions[:, class_index]
        ax.set_title(stream, fontsize=10)
        ax.set_ylabel("fraction of crops")
        ax.set_ylim(0.0, 1.0)
        ax.set_xticks(windows)
    axes[-1].set_xlabel("retraining window")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", title="class")
    return figure
