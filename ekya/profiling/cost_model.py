"""Cost of retraining jobs in GPU-seconds, and how a job's speed scales with its GPU share.

- :class:`CostModel`: GPU-seconds at 100% of one GPU of a retraining configuration,
  ``(seconds_per_sample_epoch * samples + seconds_per_step * steps) * epochs + seconds_per_sample * samples
  + startup_seconds`` with ``steps = ceil(samples / batch_size)`` per epoch (``seconds_per_sample``:
  the one-off pass through frozen layers, see ``ekya.training.retrain``).
- :class:`ThroughputTable`: relative training throughput ``s(share)`` (1.0 = one full
  GPU) measured at a few GPU shares; a job of cost ``C`` GPU-seconds run at share ``r``
  takes ``C / s(r)`` wall seconds (the window timeline's rule 3).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ekya.data.cache import write_text_atomically
from ekya.errors import EkyaError

#: Column names of a throughput table CSV file.
THROUGHPUT_COLUMNS = ("gpu_share", "relative_throughput")


@dataclass(frozen=True)
class CostModel:
    """GPU-seconds (at 100% of one GPU) of training one configuration.

    Attributes:
        seconds_per_sample_epoch: GPU-seconds to train on one sample for one epoch, >= 0.
        startup_seconds: fixed GPU-seconds per job (model load, data loader start), >= 0.
        seconds_per_sample: one-off GPU-seconds per sample, whatever the epochs (the frozen
            layers' output, computed once), >= 0.
        seconds_per_step: GPU-seconds per optimizer step (batch), whatever its size, >= 0.
        batch_size: samples per step, >= 1 (needed when ``seconds_per_step`` > 0).
    """

    seconds_per_sample_epoch: float
    startup_seconds: float = 0.0
    seconds_per_sample: float = 0.0
    seconds_per_step: float = 0.0
    batch_size: int = 1

    def __post_init__(self) -> None:
        for name in ("seconds_per_sample_epoch", "startup_seconds", "seconds_per_sample", "seconds_per_step"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise EkyaError(f"CostModel.{name} must be finite and >= 0 seconds, got {value!r}")
        if isinstance(self.batch_size, bool) or int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise EkyaError(f"CostModel.batch_size must be an integer >= 1, got {self.batch_size!r}")

    @classmethod
    def from_measurement(
        cls, seconds_per_epoch: float, num_samples: int, startup_seconds: float = 0.0, feature_seconds: float = 0.0,
        batch_size: int | None = None,
    ) -> CostModel:
        """Cost model from one measured run on ``num_samples`` samples: ``seconds_per_epoch``
        GPU-seconds per epoch plus ``feature_seconds`` once (the frozen layers' pass).

        With ``batch_size``, an epoch's cost scales with its optimizer steps (``ceil(samples /
        batch_size)``); without, with its samples. Small batches of small crops cost about the
        same per step whatever their size (kernel launches on a GPU, the optimizer's update of
        every trained weight on either device): on the built-in data, resnet18, steps estimate
        full retraining within a median 15% on a CPU and 27% on an H100, samples within 41% and 98%.
        """
        if num_samples <= 0:
            raise EkyaError(f"cannot derive a cost per sample from a run on {num_samples} samples; need > 0")
        for name, value in (("seconds_per_epoch", seconds_per_epoch), ("feature_seconds", feature_seconds)):
            if not (np.isfinite(value) and value >= 0):
                raise EkyaError(f"{name} must be finite and >= 0, got {value!r}")
        if batch_size is None:
            return cls(seconds_per_epoch / num_samples, startup_seconds, feature_seconds / num_samples)
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise EkyaError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        steps = -(-num_samples // int(batch_size))
        return cls(0.0, startup_seconds, feature_seconds / num_samples, seconds_per_epoch / steps, int(batch_size))

    def gpu_seconds(self, num_samples: float, epochs: float) -> float:
        """GPU-seconds at 100% of one GPU to train ``epochs`` epochs on ``num_samples`` samples."""
        if num_samples < 0 or epochs < 0:
            raise EkyaError(f"num_samples and epochs must be >= 0, got {num_samples!r} and {epochs!r}")
        steps = float(np.ceil(num_samples / self.batch_size))
        return ((self.seconds_per_sample_epoch * num_samples + self.seconds_per_step * steps) * epochs
                + self.seconds_per_sample * num_samples + self.startup_seconds)


class ThroughputTable:
    """Relative training throughput as a function of GPU share.

    ``s(share)`` is piecewise linear through the measured points and through (0, 0), so it
    is monotone between points; above the last measured share it grows linearly from the
    last point, ``s(r) = s(r_last) * r / r_last`` (e.g. 2 GPUs = twice one GPU when the
    last point is share 1.0).

    Args:
        shares: measured GPU shares (> 0, distinct; 1.0 = one full GPU, 2.0 = two GPUs).
        throughputs: relative throughput at each share (> 0, non-decreasing with share),
            normalised so that ``s(1.0) = 1`` (use :meth:`normalised` for raw samples/second).

    Raises:
        EkyaError: empty, mismatched lengths, non-positive or duplicate shares,
            non-positive or decreasing throughputs, or ``s(1.0) != 1``.
    """

    def __init__(self, shares: list[float] | np.ndarray, throughputs: list[float] | np.ndarray) -> None:
        share_array, throughput_array = self._validated(shares, throughputs)
        self.shares = share_array
        self.throughputs = throughput_array
        at_one_gpu = self.throughput(1.0)
        if abs(at_one_gpu - 1.0) > 1e-6:
            raise EkyaError(
                f"throughput table must give relative throughput 1.0 at share 1.0 (one full GPU), got {at_one_gpu:.6g}; "
                "use ThroughputTable.normalised(...) for raw measurements"
            )

    @staticmethod
    def _validated(shares: list[float] | np.ndarray, throughputs: list[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        share_array = np.asarray(shares, dtype=np.float64)
        throughput_array = np.asarray(throughputs, dtype=np.float64)
        if share_array.ndim != 1 or share_array.shape != throughput_array.shape or len(share_array) == 0:
            raise EkyaError(
                f"throughput table needs equal-length non-empty 1-D shares and throughputs, got {shares!r} and {throughputs!r}"
            )
        if not np.all(np.isfinite(share_array)) or np.any(share_array <= 0):
            raise EkyaError(f"GPU shares must be finite and > 0, got {share_array.tolist()}")
        if not np.all(np.isfinite(throughput_array)) or np.any(throughput_array <= 0):
            raise EkyaError(f"relative throughputs must be finite and > 0, got {throughput_array.tolist()}")
        order = np.argsort(share_array, kind="stable")
        share_array, throughput_array = share_array[order], throughput_array[order]
        if np.any(np.diff(share_array) == 0):
            raise EkyaError(f"GPU shares must be distinct, got {share_array.tolist()}")
        if np.any(np.diff(throughput_array) < 0):
            pairs = list(zip(share_array.tolist(), throughput_array.tolist()))
            raise EkyaError(f"relative throughput must not decrease as the GPU share grows, got (share, throughput) {pairs}")
        return share_array, throughput_array

    @classmethod
    def linear(cls) -> ThroughputTable:
        """The default: throughput proportional to the share, ``s(r) = r``."""
        return cls([1.0], [1.0])

    @classmethod
    def normalised(cls, shares: list[float] | np.ndarray, throughputs: list[float] | np.ndarray) -> ThroughputTable:
        """Table from raw throughputs (e.g. samples/second), divided by their value at share 1.0."""
        share_array, throughput_array = cls._validated(shares, throughputs)
        at_one_gpu = _interpolate(share_array, throughput_array, np.array(1.0))
        return cls(share_array, throughput_array / at_one_gpu)

    def throughput(self, share: float | np.ndarray) -> float | np.ndarray:
        """Relative throughput ``s(share)`` (1.0 = one full GPU) at GPU share(s) >= 0 (0 for a share of 0: no job)."""
        values = np.asarray(share, dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise EkyaError(f"GPU share must be finite and >= 0, got {share!r}")
        result = _interpolate(self.shares, self.throughputs, values)
        return float(result) if result.ndim == 0 else result

    def seconds(self, gpu_seconds: float | np.ndarray, share: float | np.ndarray) -> float | np.ndarray:
        """Wall seconds a job of ``gpu_seconds`` (at 100% of one GPU) takes at GPU ``share`` (> 0)."""
        cost = np.asarray(gpu_seconds, dtype=np.float64)
        if not np.all(np.isfinite(cost)) or np.any(cost < 0):
            raise EkyaError(f"gpu_seconds must be finite and >= 0, got {gpu_seconds!r}")
        if not np.all(np.asarray(share, dtype=np.float64) > 0):
            raise EkyaError(f"GPU share must be finite and > 0, got {share!r}")
        result = cost / np.asarray(self.throughput(share))
        return float(result) if result.ndim == 0 else result

    def to_csv_text(self) -> str:
        """The table as CSV text with header ``gpu_share,relative_throughput``."""
        lines = [",".join(THROUGHPUT_COLUMNS)]
        lines += [f"{share!r},{throughput!r}" for share, throughput in zip(self.shares.tolist(), self.throughputs.tolist())]
        return "\n".join(lines) + "\n"

    def save_csv(self, path: str | Path) -> None:
        """Write the table as CSV (:meth:`to_csv_text`), atomically."""
        write_text_atomically(path, self.to_csv_text())

    @classmethod
    def load_csv(cls, path: str | Path) -> ThroughputTable:
        """Read a table written by :meth:`save_csv` (header ``gpu_share,relative_throughput``)."""
        path = Path(path)
        if not path.is_file():
            raise EkyaError(f"throughput table {path} does not exist")
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or tuple(cell.strip() for cell in rows[0]) != THROUGHPUT_COLUMNS:
            found = rows[0] if rows else "an empty file"
            raise EkyaError(f"{path}: first row must be the header {','.join(THROUGHPUT_COLUMNS)}, got {found}")
        shares, throughputs = [], []
        for line_number, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            try:
                share, throughput = (float(cell) for cell in row)
            except ValueError:
                raise EkyaError(
                    f"{path}, line {line_number}: expected two numbers (gpu_share, relative_throughput), got {row}"
                ) from None
            shares.append(share)
            throughputs.append(throughput)
        try:
            return cls(shares, throughputs)
        except EkyaError as error:
            raise EkyaError(f"{path}: {error}") from None

    def __repr__(self) -> str:
        points = ", ".join(f"({share:g}, {throughput:g})" for share, throughput in zip(self.shares, self.throughputs))
        return f"ThroughputTable([{points}])"


def _interpolate(shares: np.ndarray, throughputs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Piecewise linear through (0, 0) and the points; linear growth from the last point beyond it."""
    inside = np.interp(values, np.concatenate([[0.0], shares]), np.concatenate([[0.0], throughputs]))
    beyond = throughputs[-1] * values / shares[-1]
    return np.where(values > shares[-1], beyond, inside)
