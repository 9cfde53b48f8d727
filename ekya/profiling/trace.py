"""Profile traces: the file format that offline profiling writes and the simulator replays.

A trace is a folder:

* ``trace.yaml``: ``window_seconds`` (required); optional ``gpus``, ``min_accuracy``, ``delta``;
  ``streams`` (list of names); optional ``uniform_configs`` (``{high: name, low: name}``).
* ``retrain.csv``: ``stream, window, config, gpu_seconds, accuracy`` and optional ``eval_window``.
  The model retrained in ``window`` with ``config`` costs ``gpu_seconds`` at 100% of one GPU and
  has ``accuracy`` when serving window ``eval_window`` (default: ``window``). A model keeps its
  last known accuracy on later windows without a row. The initial model is ``config = base``,
  ``window = -1``, ``gpu_seconds = 0``, with one row per ``eval_window`` (or one row for all).
* ``inference.csv``: ``stream, config, demand_gpu, accuracy_factor``; ``stream`` may be ``*`` for
  every stream. ``demand_gpu`` is the GPU share needed to process every frame in real time.

pandas reads and writes the CSV files; it is imported then, so that a run whose trace folder is
missing, or that has none, is checked without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from ekya.errors import EkyaError

if TYPE_CHECKING:
    import pandas as pd

BASE_CONFIG = "base"
RETRAIN_COLUMNS = ("stream", "window", "config", "gpu_seconds", "accuracy")
INFERENCE_COLUMNS = ("stream", "config", "demand_gpu", "accuracy_factor")
ALL_STREAMS = "*"


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()


@dataclass(frozen=True)
class RetrainProfile:
    """Cost and accuracy of every retraining configuration of one stream in one window.

    Attributes:
        names: configuration names.
        gpu_seconds: cost of each, GPU-seconds at 100% of one GPU.
        accuracy: accuracy of each retrained model on this window.
    """

    names: tuple[str, ...]
    gpu_seconds: np.ndarray
    accuracy: np.ndarray


@dataclass
class Trace:
    """A loaded profile trace (see the module docstring for the format).

    Attributes:
        root: the trace folder.
        window_seconds: T, seconds.
        streams: stream names, in declared order.
        gpus, min_accuracy, delta: the trace's own defaults, or None.
        uniform_configs: optional names of Uniform's ``high``/``low`` configurations.
        retrain: the rows of retrain.csv (``eval_window`` filled in).
        inference: per stream, a table of inference configurations (name -> (demand, factor)).
    """

    root: Path
    window_seconds: float
    streams: list[str]
    gpus: float | None = None
    min_accuracy: float | None = None
    delta: float | None = None
    uniform_configs: dict[str, str] = field(default_factory=dict)
    retrain: pd.DataFrame = field(default_factory=_empty_frame)
    inference: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # (stream, model window, config) -> sorted eval windows and accuracies, for look-ups.
        self._models: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
        for (stream, window, config), rows in self.retrain.groupby(["stream", "window", "config"], sort=False):
            rows = rows.sort_values("eval_window")
            self._models[(stream, int(window), config)] = (rows["eval_window"].to_numpy(int), rows["accuracy"].to_numpy(float))
        self._windows = sorted(int(w) for w in self.retrain["window"].unique() if w >= 0)

    @property
    def num_windows(self) -> int:
        """Windows with retraining rows (0 .. n-1)."""
        return (max(self._windows) + 1) if self._windows else 0

    def model_accuracy(self, stream: str, model_window: int, config: str, eval_window: int) -> float:
        """Accuracy on ``eval_window`` of the model retrained in ``model_window`` with ``config``.

        The last known accuracy at or before ``eval_window``; the first one if all are later.
        """
        windows, accuracies = self._models[(stream, model_window, config)]
        position = int(np.searchsorted(windows, eval_window, side="right")) - 1
        return float(accuracies[max(position, 0)])

    def retrain_profile(self, stream: str, window: int) -> RetrainProfile:
        """The configurations a stream can retrain with in ``window`` (accuracy on that window)."""
        names = sorted(config for (s, w, config) in self._models if s == stream and w == window and config != BASE_CONFIG)
        rows = self.retrain[(self.retrain["stream"] == stream) & (self.retrain["window"] == window)]
        cost = rows.groupby("config")["gpu_seconds"].first()
        return RetrainProfile(
            names=tuple(names),
            gpu_seconds=np.array([float(cost[name]) for name in names]),
            accuracy=np.array([self.model_accuracy(stream, window, name, window) for name in names]),
        )

    def holdout_profile(self) -> RetrainProfile:
        """Mean cost and accuracy of each configuration over all streams and windows (picks Uniform's configs)."""
        rows = self.retrain[(self.retrain["config"] != BASE_CONFIG) & (self.retrain["eval_window"] == self.retrain["window"])]
        means = rows.groupby("config")[["gpu_seconds", "accuracy"]].mean().sort_index()
        return RetrainProfile(tuple(means.index), means["gpu_seconds"].to_numpy(), means["accuracy"].to_numpy())

    def base_accuracy(self) -> float:
        rows = self.retrain[self.retrain["config"] == BASE_CONFIG]
        return float(rows["accuracy"].mean())

    def inference_table(self, stream: str) -> dict[str, tuple[float, float]]:
        """Inference configurations of ``stream``: name -> (demand_gpu, accuracy_factor)."""
        return self.inference[stream]


def _fail(path: Path, message: str) -> EkyaError:
    return EkyaError(f"{path}: {message}")


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise _fail(path, "missing (a trace folder needs trace.yaml, retrain.csv and inference.csv)")
    import pandas as pd

    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise _fail(path, f"not a readable CSV file ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise _fail(path, f"missing column(s) {', '.join(missing)}; found {', '.join(frame.columns)}; required {', '.join(required)}")
    return frame


def _numeric(frame: pd.DataFrame, path: Path, column: str, integer: bool = False) -> pd.Series:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float))
    if integer:
        bad |= values.notna() & (values.fillna(0) != np.floor(values.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, f"row {row + 2}, column {column}: {frame[column].iloc[row]!r} is not a {'whole ' if integer else ''}number")
    return values.astype(int if integer else float)


def _check_range(values: pd.Series, path: Path, column: str, low: float, high: float, what: str) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, f"row {row + 2}, column {column}: {values.iloc[row]} is outside {what}")


def load_trace(root: str | Path) -> Trace:
    """Read and validate a trace folder.

    Raises:
        EkyaError: a missing file or column, a value that is not a number, a negative cost, an
            accuracy outside [0, 1], a stream not declared in trace.yaml, a stream without a
            base model: the message names the file, row and column.
    """
    root = Path(root)
    if not root.is_dir():
        raise EkyaError(f"trace folder {root} does not exist (set executor.trace=DIR to a folder written by flows.profile_offline)")
    meta_path = root / "trace.yaml"
    if not meta_path.is_file():
        raise _fail(meta_path, "missing (a trace folder needs trace.yaml, retrain.csv and inference.csv)")
    try:
        meta = yaml.safe_load(meta_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise _fail(meta_path, f"not valid YAML ({error})") from None
    if not isinstance(meta, dict):
        raise _fail(meta_path, "must be a mapping with window_seconds and streams")
    window_seconds = meta.get("window_seconds")
    if not isinstance(window_seconds, (int, float)) or not window_seconds > 0:
        raise _fail(meta_path, f"window_seconds must be a number > 0, got {window_seconds!r}")
    streams = meta.get("streams")
    if not isinstance(streams, list) or not streams or not all(isinstance(s, (str, int)) for s in streams):
        raise _fail(meta_path, f"streams must be a non-empty list of names, got {streams!r}")
    streams = [str(s) for s in streams]
    if len(set(streams)) != len(streams):
        raise _fail(meta_path, f"streams has duplicates: {streams}")
    for key in ("gpus", "delta"):
        if key in meta and not (isinstance(meta[key], (int, float)) and meta[key] > 0):
            raise _fail(meta_path, f"{key} must be a number > 0, got {meta[key]!r}")
    if "min_accuracy" in meta and not (isinstance(meta["min_accuracy"], (int, float)) and 0 <= meta["min_accuracy"] <= 1):
        raise _fail(meta_path, f"min_accuracy must be in [0, 1], got {meta['min_accuracy']!r}")

    retrain_path = root / "retrain.csv"
    retrain = _read_csv(retrain_path, RETRAIN_COLUMNS)
    retrain["stream"] = retrain["stream"].astype(str).str.strip()
    retrain["config"] = retrain["config"].astype(str).str.strip()
    retrain["window"] = _numeric(retrain, retrain_path, "window", integer=True)
    retrain["gpu_seconds"] = _numeric(retrain, retrain_path, "gpu_seconds")
    retrain["accuracy"] = _numeric(retrain, retrain_path, "accuracy")
    if "eval_window" in retrain.columns:
        filled = retrain["eval_window"].where(retrain["eval_window"].notna(), retrain["window"])
        retrain["eval_window"] = _numeric(retrain.assign(eval_window=filled), retrain_path, "eval_window", integer=True)
    else:
        retrain["eval_window"] = retrain["window"]
    _check_range(retrain["gpu_seconds"], retrain_path, "gpu_seconds", 0, math.inf, "[0, inf): costs cannot be negative")
    _check_range(retrain["accuracy"], retrain_path, "accuracy", 0, 1, "[0, 1]")
    _check_range(retrain["window"], retrain_path, "window", -1, math.inf, "[-1, inf)")
    undeclared = ~retrain["stream"].isin(streams)
    if undeclared.any():
        row = int(np.flatnonzero(undeclared.to_numpy())[0])
        raise _fail(retrain_path, f"row {row + 2}, column stream: {retrain['stream'].iloc[row]!r} is not declared in trace.yaml streams {streams}")
    base = retrain[retrain["config"] == BASE_CONFIG]
    wrong_base = (base["window"] != -1) | (base["gpu_seconds"] != 0)
    if wrong_base.any():
        row = int(base.index[np.flatnonzero(wrong_base.to_numpy())[0]])
        raise _fail(retrain_path, f"row {row + 2}: the base model must have window -1 and gpu_seconds 0")
    missing_base = sorted(set(streams) - set(base["stream"]))
    if missing_base:
        raise _fail(retrain_path, f"stream(s) {', '.join(missing_base)} have no base model row (config {BASE_CONFIG}, window -1)")
    nonbase_minus_one = (retrain["window"] == -1) & (retrain["config"] != BASE_CONFIG)
    if nonbase_minus_one.any():
        row = int(np.flatnonzero(nonbase_minus_one.to_numpy())[0])
        raise _fail(retrain_path, f"row {row + 2}, column window: -1 is only for config {BASE_CONFIG}")

    inference_path = root / "inference.csv"
    inference_rows = _read_csv(inference_path, INFERENCE_COLUMNS)
    inference_rows["stream"] = inference_rows["stream"].astype(str).str.strip()
    inference_rows["config"] = inference_rows["config"].astype(str).str.strip()
    inference_rows["demand_gpu"] = _numeric(inference_rows, inference_path, "demand_gpu")
    inference_rows["accuracy_factor"] = _numeric(inference_rows, inference_path, "accuracy_factor")
    _check_range(inference_rows["demand_gpu"], inference_path, "demand_gpu", 1e-12, math.inf, "(0, inf): demand must be positive")
    _check_range(inference_rows["accuracy_factor"], inference_path, "accuracy_factor", 0, 1, "[0, 1]")
    unknown = ~inference_rows["stream"].isin(streams + [ALL_STREAMS])
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise _fail(inference_path, f"row {row + 2}, column stream: {inference_rows['stream'].iloc[row]!r} is not declared in trace.yaml streams {streams} (or '*')")
    inference: dict[str, dict[str, tuple[float, float]]] = {}
    for stream in streams:
        table: dict[str, tuple[float, float]] = {}
        for row in inference_rows[inference_rows["stream"] == ALL_STREAMS].itertuples():
            table[row.config] = (float(row.demand_gpu), float(row.accuracy_factor))
        for row in inference_rows[inference_rows["stream"] == stream].itertuples():
            table[row.config] = (float(row.demand_gpu), float(row.accuracy_factor))
        if not table:
            raise _fail(inference_path, f"no inference configuration for stream {stream!r}")
        inference[stream] = table

    uniform_configs = meta.get("uniform_configs") or {}
    if not isinstance(uniform_configs, dict) or set(uniform_configs) - {"high", "low"}:
        raise _fail(meta_path, f"uniform_configs must map high/low to config names, got {uniform_configs!r}")
    return Trace(
        root=root,
        window_seconds=float(window_seconds),
        streams=streams,
        gpus=meta.get("gpus"),
        min_accuracy=meta.get("min_accuracy"),
        delta=meta.get("delta"),
        uniform_configs={str(k): str(v) for k, v in uniform_configs.items()},
        retrain=retrain.reset_index(drop=True),
        inference=inference,
    )


def write_trace(
    root: str | Path,
    window_seconds: float,
    streams: list[str],
    retrain_rows: list[dict],
    inference_rows: list[dict],
    **meta: object,
) -> Path:
    """Write a trace folder (used by offline profiling and by tests). Files are replaced atomically."""
    import pandas as pd

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    header = {"window_seconds": float(window_seconds), "streams": list(streams)}
    header.update({k: v for k, v in meta.items() if v is not None})
    columns = list(RETRAIN_COLUMNS) + (["eval_window"] if any("eval_window" in r for r in retrain_rows) else [])
    files = {
        "trace.yaml": yaml.safe_dump(header, sort_keys=False),
        "retrain.csv": pd.DataFrame(retrain_rows, columns=columns).to_csv(index=False),
        "inference.csv": pd.DataFrame(inference_rows, columns=list(INFERENCE_COLUMNS)).to_csv(index=False),
    }
    for name, text in files.items():
        temporary = root / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(root / name)
    return root
