"""Offline profiling: measure every retraining configuration on every stream and window, write a trace.

The simulated executor replays what this module measures (see :mod:`ekya.profiling.trace` for
the format). For a dataset with windows ``0 .. n-1`` per stream:

* **Base model** (``config = base``, ``window = -1``): trained on the source's hold-out windows
  with :func:`ekya.training.base_model.base_model` (cached); one row per window ``k = 0 .. n-1``
  with its accuracy on window ``k``.
* **Retraining** in window ``k >= 1`` (window 0 has no earlier labeled data, so it has no
  rows): every configuration of the retraining space trains on window ``k-1`` (the config's
  ``subsample`` fraction of it), the same timeline as the local executor. Its cost is GPU-seconds
  at 100% of one GPU as :class:`ekya.profiling.costs.JobCosts` gives them: by default from the
  reference table that ships with the project (a function of the work: samples, epochs, layers
  trained, resolution), so the same settings give the same trace on every machine. Its accuracy is measured with the full inference configuration (every frame,
  crops at their own resolution) on window ``k`` and on every later window ``k+1 .. n-1``
  (``eval_window`` rows), so a model that keeps serving is replayed with its real drift.
* **Which model is retrained.** The trace cannot know which model a scheduler will have serving,
  so one is chosen per window. ``start_from="best"`` (default): in window ``k`` every
  configuration starts from the model of the configuration that was most accurate in window
  ``k-1`` (the base model in window 1), i.e. the serving model of a scheduler that always
  retrains with the best configuration. ``start_from="base"``: every configuration starts from
  the base model (windows are then independent of each other).
* **Inference** (``inference.csv``, one row per stream and configuration): ``demand_gpu`` =
  the stream's camera frame rate x the sampling rate x its objects per frame (over all its
  windows; :meth:`ekya.data.base.StreamSource.load`) x the seconds per crop of the model at the
  configuration's resolution (:func:`ekya.profiling.costs.inference_demand`); ``accuracy_factor`` =
  accuracy of the configuration / accuracy of the full configuration, base model on the
  windows of the stream itself (pooled over its windows), clipped to [0, 1] (1 when the full
  configuration gets nothing right).

Resuming: each finished (stream, window, configuration) cell is stored as one small JSON file
under ``OUTPUT/cells/<stream>-<key>/``, written atomically, so a stopped run restarts where it
stopped. ``key`` hashes everything that changes a result (the stream's and the hold-out crops,
the model settings, the retraining space, the seed, ``start_from``, the number of windows and
the device), so changed settings never reuse stale cells. With ``start_from="best"`` the best
model of each window is kept as a checkpoint beside its cells (re-trained deterministically if
missing). The trace files are written from all cells at the end (atomically, by
:func:`ekya.profiling.trace.write_trace`).

Seeds: the training of configuration ``c`` (index in the space) of stream ``s`` (index in the
source's streams) in window ``k`` is seeded with ``SeedSequence([seed, s, k, c])``, as in the
local executor, so the same seed gives the same accuracies.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ekya.data.base import CLASSES, StreamLoad, StreamSource, Window
from ekya.data.cache import cache_key, windows_digest, write_text_atomically
from ekya.errors import EkyaError
from ekya.data.base import select
from ekya.profiling.trace import BASE_CONFIG, write_trace
from ekya.inference.config import InferenceConfig
from ekya.models.checkpoints import load_checkpoint, save_checkpoint
from ekya.models.factory import MODEL_NAMES, EdgeModel
from ekya.models.predict import evaluate
from ekya.profiling.costs import JobCosts, pooled_inference_profile
from ekya.profiling.throughput import gpu_table_path, stored_throughput_table
from ekya.training.base_model import base_model
from ekya.training.config import ModelSettings, RetrainConfig
from ekya.training.retrain import retrain

#: How every retrained model's accuracy is measured: every frame, crops at their own resolution.
FULL_INFERENCE = InferenceConfig(name="full", sampling_rate=1.0, resolution=None)
#: Valid values of ``start_from``.
START_FROM = ("best", "base")
#: Bump when the meaning of a stored cell changes, so older cells are not reused (2: costs from JobCosts).
CELL_FORMAT = 2


@dataclass(frozen=True)
class CellResult:
    """One measured cell: a configuration retrained in one window of one stream.

    Attributes:
        stream: stream name.
        window: window k the model is retrained in (trained on window k-1).
        config: retraining configuration name.
        gpu_seconds: measured training cost with the whole device, seconds.
        accuracy: eval window -> accuracy in [0, 1] (full inference configuration).
    """

    stream: str
    window: int
    config: str
    gpu_seconds: float
    accuracy: dict[int, float]

    def rows(self) -> list[dict[str, Any]]:
        """retrain.csv rows, one per evaluation window."""
        return [
            {"stream": self.stream, "window": self.window, "config": self.config, "gpu_seconds": self.gpu_seconds,
             "accuracy": accuracy, "eval_window": eval_window}
            for eval_window, accuracy in sorted(self.accuracy.items())
        ]

    def to_json(self) -> str:
        return json.dumps({
            "format": CELL_FORMAT, "stream": self.stream, "window": self.window, "config": self.config,
            "gpu_seconds": self.gpu_seconds, "accuracy": {str(k): v for k, v in self.accuracy.items()},
        })

    @classmethod
    def from_json(cls, text: str) -> CellResult:
        data = json.loads(text)
        if data.get("format") != CELL_FORMAT:
            raise ValueError(f"cell format {data.get('format')!r}, expected {CELL_FORMAT}")
        return cls(
            stream=str(data["stream"]), window=int(data["window"]), config=str(data["config"]),
            gpu_seconds=float(data["gpu_seconds"]), accuracy={int(k): float(v) for k, v in data["accuracy"].items()},
        )


@dataclass(frozen=True)
class StreamRows:
    """What profiling one stream produced.

    Attributes:
        stream: stream name.
        retrain_rows: retrain.csv rows (base model and every retrained configuration).
        load: the stream's camera rate and objects per frame, over its profiled windows.
        inference_factors: each inference configuration's accuracy relative to the full one, base model on the
            stream's own windows (pooled).
    """

    stream: str
    retrain_rows: list[dict[str, Any]]
    load: StreamLoad
    inference_factors: dict[str, float]


def safe_file_name(name: str) -> str:
    """``name`` usable as a file name (other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


class CellStore:
    """The finished cells of one stream: ``ROOT/w<k>/<index>-<config>.json``, plus best-model checkpoints.

    Args:
        root: the stream's cell folder (its name carries the key of everything that changes results).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, window: int, index: int, config: str) -> Path:
        return self.root / f"w{window}" / f"{index:03d}-{safe_file_name(config)}.json"

    def load(self, window: int, index: int, config: str) -> CellResult | None:
        """The stored cell, or None if absent or unreadable."""
        path = self._path(window, index, config)
        if not path.is_file():
            return None
        try:
            return CellResult.from_json(path.read_text())
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, index: int, cell: CellResult) -> None:
        write_text_atomically(self._path(cell.window, index, cell.config), cell.to_json())

    def best_model_path(self, window: int, index: int) -> Path:
        """Checkpoint of the best model retrained in ``window`` (configuration ``index``)."""
        return self.root / f"w{window}" / f"best-{index:03d}.pt"


class RetrainingStudy:
    """What offline profiling and the profiler's evaluation share: their checked arguments, the
    streams and windows they cover (windows 1..n-1 learn from the window before), and the base
    model every stream starts from.

    Subclasses name themselves in :attr:`purpose` (for messages) and may narrow
    ``retrain_configs`` (the configurations the warm-up and the cells cover).
    """

    #: What the study is called in messages, e.g. "offline profiling".
    purpose = "retraining"

    def __init__(
        self,
        source: StreamSource,
        model: ModelSettings,
        retrain_configs: Sequence[RetrainConfig],
        output: str | os.PathLike,
        seed: int,
        streams: int | None,
        windows: int | None,
        cache_dir: str | os.PathLike | None,
        device: str,
        torch_threads: int | None,
        progress: bool,
    ) -> None:
        _check_model(model)
        if not retrain_configs:
            raise EkyaError("the retraining space is empty: give at least one retraining configuration")
        names = [config.name for config in retrain_configs]
        if len(set(names)) != len(names):
            raise EkyaError(f"retraining configuration names must be unique, got {names}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise EkyaError(f"seed must be an int >= 0, got {seed!r}")
        if torch_threads is not None and (isinstance(torch_threads, bool) or not isinstance(torch_threads, int) or torch_threads < 1):
            raise EkyaError(f"torch_threads must be an int >= 1 or null, got {torch_threads!r}")
        self.output = Path(output)
        if self.output.exists() and not self.output.is_dir():
            raise EkyaError(f"output {self.output} exists and is not a folder")
        self.source = source
        self.model = model
        self.retrain_configs = list(retrain_configs)
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.output / "models"
        self.device = device
        self.torch_threads = torch_threads
        self.progress = progress
        self.stream_names = select(source.streams, streams, "streams")
        self.windows = {stream: self._window_count(stream, windows) for stream in self.stream_names}
        self._base: EdgeModel | None = None
        self._holdout: list[Window] | None = None

    def _window_count(self, stream: str, windows: int | None) -> int:
        count = len(select(list(range(self.source.num_windows(stream))), windows, "windows"))
        if count < 2:
            raise EkyaError(
                f"stream {stream} would have {count} window(s); {self.purpose} needs at least 2 "
                "(window 0 has no earlier data to retrain on)"
            )
        return count

    def prepare(self) -> EdgeModel:
        """Set torch threads and train (or load) the base model; returns it."""
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        if self._base is None:
            self._holdout = self.source.holdout()
            if not self._holdout:
                raise EkyaError("the dataset has no hold-out windows to train the base model on")
            self._base = base_model(
                self._holdout, self.model.name, self.model.hidden_size, self.model.base_epochs, self.seed, self.cache_dir,
                num_classes=len(CLASSES), batch_size=self.model.base_batch_size, learning_rate=self.model.base_learning_rate,
                device=self.device, progress=self.progress,
            )
            if torch.device(self.device).type != "cpu":
                self._warm_up()
        return self._base

    def _warm_up(self) -> None:
        """One throwaway training step and forward pass per kind of configuration, so that the first
        measured cell does not pay the accelerator's one-off start (context, kernel selection)."""
        crops = self._holdout[0].subset(np.arange(min(64, len(self._holdout[0]))))
        for config in {(config.train_layers, config.hidden_size): config for config in self.retrain_configs}.values():
            probe = RetrainConfig("warm-up", config.train_layers, config.hidden_size, 1.0, 1, config.batch_size, config.learning_rate)
            retrain(self._base, crops, probe, seed=self.seed, device=self.device, validation=crops)


class OfflineProfiler(RetrainingStudy):
    """Measures every (stream, window, retraining configuration) cell of a dataset and writes a trace.

    Args:
        source: the dataset (streams with windows; hold-out windows train the base model).
        model: edge model and base-model training settings.
        retrain_configs: the retraining space Γ.
        inference_configs: the inference space.
        output: trace folder to write (cells are kept in ``output/cells``).
        seed: seeds the base model and every retraining.
        streams: profile the first N streams (None: all).
        windows: profile the first N windows of each stream, N >= 2 (None: all).
        start_from: ``"best"`` or ``"base"``, the model each window's configurations start from
            (see the module docstring).
        cache_dir: folder of cached base-model checkpoints (None: ``output/models``).
        device: torch device to train and infer on.
        torch_threads: torch intra-op threads while profiling (None: leave as is).
        progress: show a progress bar over cells.
        label_frames: the labeling budget: frames of window k-1 whose crops retraining uses (evenly spread), as
            the local executor's ``labeler.label_frames``; None: every frame.
        cost: how cells' GPU-seconds and inference seconds per crop are obtained: ``reference`` (the table that
            ships with the project), ``calibrated``, ``measured`` or the path of a .csv table (:class:`JobCosts`).
    """

    purpose = "offline profiling"

    def __init__(
        self,
        source: StreamSource,
        model: ModelSettings,
        retrain_configs: Sequence[RetrainConfig],
        inference_configs: Sequence[InferenceConfig],
        output: str | os.PathLike,
        seed: int = 0,
        streams: int | None = None,
        windows: int | None = None,
        start_from: str = "best",
        cache_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        torch_threads: int | None = 1,
        progress: bool = True,
        cost: str = "reference",
        label_frames: int | None = None,
    ) -> None:
        if not inference_configs:
            raise EkyaError("the inference space is empty: give at least one inference configuration")
        if start_from not in START_FROM:
            raise EkyaError(f"start_from must be one of {', '.join(START_FROM)}, got {start_from!r}")
        super().__init__(source, model, retrain_configs, output, seed, streams, windows, cache_dir, device, torch_threads, progress)
        self.inference_configs = list(inference_configs)
        self.costs = JobCosts(cost, device, model.name, progress, key="cost")
        self.label_frames = label_frames
        self.start_from = start_from
        #: Cells trained (not resumed) by this object, for progress reports and tests.
        self.cells_trained = 0
        self._bar: tqdm | None = None

    @property
    def num_cells(self) -> int:
        """(stream, window, configuration) cells to measure, windows 1 .. n-1 of every stream."""
        return sum(count - 1 for count in self.windows.values()) * len(self.retrain_configs)

    # -- once per run ----------------------------------------------------------------------
    def prepare_costs(self) -> None:
        """Take (or calibrate) the jobs' costs: training rates and inference seconds per crop (the trace's accuracy
        factors are each stream's own, measured in :meth:`profile_stream`)."""
        base = self.prepare()
        holdout = [window for window in (self._holdout or []) if len(window) > 0]
        if not holdout:
            raise EkyaError("the hold-out windows have no crops to measure inference on")
        configs = {config.name: config for config in self.inference_configs}
        self.costs.prepare(base, holdout, {config.name: config for config in self.retrain_configs}, configs, FULL_INFERENCE,
                           {"data": windows_digest(holdout), "model": vars(self.model)}, self.seed, str(self.cache_dir))

    # -- per stream ------------------------------------------------------------------------
    def _store(self, stream: str, windows: list[Window], holdout: list[Window]) -> CellStore:
        key = cache_key({
            "format": CELL_FORMAT,
            "stream_data": windows_digest(windows),
            "holdout_data": windows_digest(holdout),
            "window_seconds": self.source.window_seconds,
            "model": vars(self.model),
            "retrain_space": [config.to_dict() for config in self.retrain_configs],
            "seed": self.seed,
            "start_from": self.start_from,
            "label_frames": self.label_frames,
            "device": str(self.device),
            "cost": self.costs.key(),
        })
        return CellStore(self.output / "cells" / f"{safe_file_name(stream)}-{key}")

    def _seed(self, stream: str, window: int, config_index: int) -> int:
        stream_index = self.source.streams.index(stream)
        return int(np.random.SeedSequence([self.seed, stream_index, window, config_index]).generate_state(1)[0])

    def _progress_bar(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(total=self.num_cells, desc="offline profiling", unit="cell", disable=not self.progress)
        return self._bar

    def profile_stream(self, stream: str) -> StreamRows:
        """Measure (or resume) every cell of ``stream``; its retrain.csv rows and frame rate."""
        if stream not in self.windows:
            raise EkyaError(f"unknown stream {stream!r}; profiled streams: {', '.join(self.stream_names)}")
        base = self.prepare()
        windows = [self.source.window(stream, k) for k in range(self.windows[stream])]
        store = self._store(stream, windows, self._holdout or [])
        rows = [
            {"stream": stream, "window": -1, "config": BASE_CONFIG, "gpu_seconds": 0.0,
             "accuracy": evaluate(base, window, device=self.device), "eval_window": window.index}
            for window in windows
        ]
        bar = self._progress_bar()
        best_models: dict[int, EdgeModel] = {}  # window -> best model trained in it (this run)
        for k in range(1, len(windows)):
            bar.set_postfix_str(f"{stream} window {k}")
            cells: list[CellResult] = []
            best_trained: tuple[float, int, EdgeModel] | None = None
            start: EdgeModel | None = None
            for index, config in enumerate(self.retrain_configs):
                cell = store.load(k, index, config.name)
                if cell is None:
                    if start is None:
                        start = self._start_model(stream, k, windows, store, best_models)
                    cell, model = self._train_cell(stream, k, index, config, start, windows)
                    store.save(index, cell)
                    if best_trained is None or cell.accuracy[k] > best_trained[0]:
                        best_trained = (cell.accuracy[k], index, model)
                cells.append(cell)
                bar.update(1)
            rows.extend(row for cell in cells for row in cell.rows())
            if self.start_from == "best" and k + 1 < len(windows):
                best = _best_index(cells, k)
                if best_trained is not None and best_trained[1] == best:
                    save_checkpoint(best_trained[2], store.best_model_path(k, best))
                    best_models = {k: best_trained[2]}
        configs = {config.name: config for config in self.inference_configs}
        factors = {name: factor for name, (_, factor) in pooled_inference_profile(base, windows, configs, FULL_INFERENCE, self.device).items()}
        return StreamRows(stream, rows, self.source.load(windows), factors)

    def _train_cell(
        self, stream: str, k: int, index: int, config: RetrainConfig, start: EdgeModel, windows: list[Window]
    ) -> tuple[CellResult, EdgeModel]:
        result = retrain(start, windows[k - 1].sample_frames(self.label_frames), config, seed=self._seed(stream, k, index), device=self.device)
        self.cells_trained += 1
        accuracy = {window.index: evaluate(result.model, window, device=self.device) for window in windows[k:]}
        return CellResult(stream, k, config.name, float(self.costs.training_seconds(config, result)), accuracy), result.model

    def _start_model(
        self, stream: str, k: int, windows: list[Window], store: CellStore, best_models: dict[int, EdgeModel]
    ) -> EdgeModel:
        """The model every configuration retrained in window ``k`` starts from."""
        base = self.prepare()
        if self.start_from == "base" or k == 1:
            return base
        if k - 1 in best_models:
            return best_models[k - 1]
        previous = [store.load(k - 1, i, c.name) for i, c in enumerate(self.retrain_configs)]
        if any(cell is None for cell in previous):
            raise RuntimeError(f"cells of window {k - 1} of {stream} are missing; profile windows in order")
        best = _best_index(previous, k - 1)
        path = store.best_model_path(k - 1, best)
        if path.is_file():
            try:
                return load_checkpoint(path, device=self.device)
            except EkyaError:
                path.unlink(missing_ok=True)
        # Not kept (the run stopped between cells and checkpoint): train it again, deterministically.
        start = self._start_model(stream, k - 1, windows, store, best_models)
        config = self.retrain_configs[best]
        model = retrain(start, windows[k - 2].sample_frames(self.label_frames), config, seed=self._seed(stream, k - 1, best), device=self.device).model
        save_checkpoint(model, path)
        return model

    # -- the trace -------------------------------------------------------------------------
    def write(self, streams: list[StreamRows]) -> Path:
        """Write trace.yaml, retrain.csv and inference.csv into ``output`` (atomically); call :meth:`prepare_costs` first."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        retrain_rows = [row for stream in streams for row in stream.retrain_rows]
        configs = {config.name: config for config in self.inference_configs}
        inference_rows = [
            {"stream": stream.stream, "config": name, "demand_gpu": demand, "accuracy_factor": factor}
            for stream in streams
            for name, (demand, factor) in self.costs.inference_table(stream.load, configs, stream.inference_factors).items()
        ]
        root = write_trace(self.output, self.source.window_seconds, [s.stream for s in streams], retrain_rows, inference_rows)
        if torch.device(self.device).type == "cpu":  # a GPU's table is measured under MPS: ekya.execution.gpu.measure
            stored_throughput_table(self.cache_dir, self.model.name, self.device).save_csv(root / "throughput.csv")
        elif torch.cuda.is_available() and gpu_table_path(self.cache_dir, self.model.name, torch.cuda.get_device_name(self.device)).is_file():
            stored_throughput_table(self.cache_dir, self.model.name, self.device).save_csv(root / "throughput.csv")
        return root

    def run(self) -> Path:
        """Profile every stream and write the trace; returns the trace folder."""
        self.prepare_costs()
        streams = [self.profile_stream(stream) for stream in self.stream_names]
        return self.write(streams)


def _check_model(model: ModelSettings) -> None:
    if model.name not in MODEL_NAMES:
        raise EkyaError(f"unknown model {model.name!r}; valid models: {', '.join(MODEL_NAMES)}")
    # The base model's training settings are validated like a retraining configuration.
    RetrainConfig(
        name="base", train_layers="all", hidden_size=model.hidden_size, subsample=1.0,
        epochs=model.base_epochs, batch_size=model.base_batch_size, learning_rate=model.base_learning_rate,
    )


def _best_index(cells: Sequence[CellResult | None], window: int) -> int:
    """Index of the most accurate cell on ``window`` (the first one on ties)."""
    accuracies = [cell.accuracy[window] if cell is not None else -1.0 for cell in cells]
    return int(np.argmax(accuracies))
