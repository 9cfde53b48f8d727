"""Deterministic job costs: a reference table of seconds per crop, per model, resolution and layers trained.

Every GPU-second that a trace, a local run or a scheduler sees is a function of the work only:

- **inference** of one crop at ``resolution`` pixels: ``inference[model, resolution]`` seconds
  (the model run on the crop at that resolution);
- **retraining** the last ``train_layers`` layer groups on ``n`` crops of ``resolution`` pixels
  for ``e`` epochs: ``frozen * n + train * n * e`` seconds, where ``frozen`` is the one-off pass
  through the frozen layers (0 when every layer trains) and ``train`` a crop's forward, backward
  and optimizer step through the trained layers, at batch size 32;
- **validating** on ``v`` crops at ``p`` points: ``frozen * v + validation * v * p`` seconds.

All are seconds with the whole reference device (GPU-seconds at 100% of one GPU on a GPU). A
table ships with the project (``ekya/profiling/reference/<device>.csv``), its first lines naming
the device, date and command that measured it, so the same config and seed give the same trace,
decisions and headline on every machine. ``python -m ekya.profiling.reference_costs --output
PATH`` measures this machine's own table; ``executor.cost=PATH`` (or ``cost=PATH`` in
``flows.profile_offline``) uses it.

The hidden size of a head and the batch size do not enter the table: it is measured with the
model's default head and batches of 32 crops.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ekya.errors import EkyaError

#: Columns of a reference table (after its ``#`` comment lines).
COLUMNS = ("kind", "model", "resolution", "train_layers", "seconds_per_crop")
#: What each row measures: inference of a whole crop; and per train_layers, the frozen layers'
#: one-off pass, training (per crop and epoch), validation (per crop and point) of the trained layers.
KINDS = ("inference", "frozen", "train", "validation")
#: The tables that ship with the project, by torch device type.
SHIPPED = {"cpu": Path(__file__).with_name("reference") / "cpu.csv"}
#: Resolutions (pixels) and batch size the shipped tables are measured at.
RESOLUTIONS = (16, 24, 32, 48, 64)
TRAIN_BATCH_SIZE = 32


@dataclass(frozen=True)
class TrainingRates:
    """Seconds per crop of one (model, resolution, train_layers), with the whole reference device.

    Attributes:
        frozen: the one-off pass of a crop through the frozen layers (0 when every layer trains).
        train: forward, backward and optimizer step of a crop through the trained layers, per epoch.
        validation: a crop's forward pass through the trained layers, per validation point.
    """

    frozen: float
    train: float
    validation: float


class ReferenceCosts:
    """A reference table: seconds per crop by kind, model, resolution and layers trained.

    Args:
        rows: (kind, model, resolution, train_layers or None, seconds per crop).
        source: where the table comes from (a path), for messages.
        header: the table's comment lines (device, date, command).
    """

    def __init__(self, rows: Iterable[tuple[str, str, int, int | None, float]], source: str, header: tuple[str, ...] = ()) -> None:
        self.rows = [tuple(row) for row in rows]
        self.source = source
        self.header = header
        self._inference: dict[tuple[str, int], float] = {}
        self._training: dict[tuple[str, int, int], dict[str, float]] = {}
        for kind, model, resolution, train_layers, seconds in self.rows:
            if kind == "inference":
                self._inference[(model, resolution)] = seconds
            else:
                self._training.setdefault((model, resolution, int(train_layers)), {})[kind] = seconds
        for key, kinds in self._training.items():
            missing = [kind for kind in KINDS[1:] if kind not in kinds]
            if missing:
                raise EkyaError(f"{source}: {key[0]} at {key[1]} px, train_layers={key[2]} has no {', '.join(missing)} row")

    # -- lookups ---------------------------------------------------------------------------
    def resolutions(self, model: str) -> list[int]:
        """Resolutions (pixels) the table has for ``model``."""
        return sorted({resolution for name, resolution in self._inference if name == model})

    def _check(self, model: str, resolution: int, key: str) -> None:
        if not any(name == model for name, _ in self._inference):
            models = sorted({name for name, _ in self._inference})
            raise EkyaError(f"{self.source} has no costs of model {model!r}; it has {', '.join(models)}")
        if (model, resolution) not in self._inference:
            valid = ", ".join(str(r) for r in self.resolutions(model))
            raise EkyaError(f"{key}={resolution}: {self.source} has no costs of {model} at {resolution} px; valid resolutions: {valid}")

    def inference_seconds(self, model: str, resolution: int, key: str = "resolution") -> float:
        """Seconds to run ``model`` on one crop of ``resolution`` pixels (``key`` names the setting in messages)."""
        self._check(model, int(resolution), key)
        return self._inference[(model, int(resolution))]

    def layer_counts(self, model: str) -> list[int]:
        """The train_layers counts the table has for ``model`` (the largest is every layer)."""
        return sorted({layers for name, _, layers in self._training if name == model})

    def training_rates(self, model: str, resolution: int, train_layers: int | str, key: str = "resolution") -> TrainingRates:
        """:class:`TrainingRates` of training the last ``train_layers`` groups (``"all"``: every one) of ``model``."""
        self._check(model, int(resolution), key)
        counts = self.layer_counts(model)
        layers = counts[-1] if train_layers == "all" else min(int(train_layers), counts[-1])
        rates = self._training.get((model, int(resolution), layers))
        if rates is None:
            raise EkyaError(f"{self.source} has no training costs of {model} at {resolution} px with train_layers={train_layers}; "
                            f"it has train_layers {', '.join(map(str, counts))}")
        return TrainingRates(rates["frozen"], rates["train"], rates["validation"])

    # -- files -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> ReferenceCosts:
        """Read a table written by :func:`table_text`; every bad row is named with its line."""
        path = Path(path)
        if not path.is_file():
            raise EkyaError(f"cost table {path} does not exist")
        lines = path.read_text().splitlines()
        header = tuple(line[1:].strip() for line in lines if line.startswith("#"))
        body = [(number, line) for number, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#")]
        if not body or tuple(cell.strip() for cell in body[0][1].split(",")) != COLUMNS:
            raise EkyaError(f"{path}: the first row after the # lines must be the header {','.join(COLUMNS)}")
        rows = []
        for number, line in body[1:]:
            cells = next(csv.reader([line]))
            try:
                kind, model, resolution, layers, seconds = (cell.strip() for cell in cells)
                row = (kind, model, int(resolution), int(layers) if layers else None, float(seconds))
            except ValueError:
                raise EkyaError(f"{path}, line {number}: expected {','.join(COLUMNS)}, got {line!r}") from None
            if kind not in KINDS or (kind != "inference") != (row[3] is not None) or not row[4] >= 0 or row[2] < 1:
                raise EkyaError(f"{path}, line {number}: kind one of {', '.join(KINDS)} (train_layers given unless inference), "
                                f"resolution >= 1 and seconds_per_crop >= 0; got {line!r}")
            rows.append(row)
        return cls(rows, str(path), header)

    @classmethod
    def shipped(cls, device: str, key: str = "cost") -> ReferenceCosts:
        """The table that ships with the project for ``device``'s type (cpu); ``key`` names the setting in messages."""
        device_type = device.split(":")[0]
        if device_type not in SHIPPED:
            raise EkyaError(f"{key}=reference: no reference cost table ships for device {device!r} (tables: {', '.join(SHIPPED)}); "
                            f"measure this device's with `python -m ekya.profiling.reference_costs --device {device} --output PATH` "
                            f"and pass {key}=PATH, or use {key}=calibrated")
        return cls.load(SHIPPED[device_type])


def table_text(rows: list[tuple[str, str, int, int | None, float]], header: list[str]) -> str:
    """A reference table as text: ``#`` comment lines, then CSV with :data:`COLUMNS`."""
    out = io.StringIO()
    for line in header:
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for kind, model, resolution, layers, seconds in rows:
        writer.writerow([kind, model, resolution, "" if layers is None else layers, f"{seconds:.6g}"])
    return out.getvalue()


def measure_rows(model_name: str, resolutions: Iterable[int], device: str = "cpu", crops: int = 256, repeats: int = 3,
                 progress: bool = True) -> list[tuple[str, str, int, int | None, float]]:
    """Measure every row of ``model_name`` at ``resolutions`` on ``device``: the fastest of ``repeats`` runs, on
    random crops, through the same code as real retraining (:func:`ekya.training.retrain.retrain`) and inference."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ekya.data.base import Window
    from ekya.inference.config import InferenceConfig
    from ekya.inference.run import run_inference
    from ekya.models.factory import build_model, num_layer_groups
    from ekya.training.config import RetrainConfig
    from ekya.training.retrain import retrain

    rows: list[tuple[str, str, int, int | None, float]] = []
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model(model_name).to(device).eval()
    groups = num_layer_groups(model)
    resolutions = list(resolutions)
    bar = tqdm(total=len(resolutions) * (groups + 1), desc=f"reference costs of {model_name}", disable=not progress)
    for resolution in resolutions:
        images = rng.integers(0, 256, (crops, 3, resolution, resolution), dtype=np.uint8)
        labels = rng.integers(0, model.num_classes, crops)
        window = Window("reference", 0, 0.0, 1.0, images, labels, np.arange(crops) // 4, np.arange(crops) / crops)
        full = InferenceConfig("reference", 1.0, None)
        run_inference(model, window, full, device)  # warm-up
        rows.append(("inference", model_name, resolution, None,
                     min(run_inference(model, window, full, device).seconds_per_crop for _ in range(repeats))))
        bar.update(1)
        validation = window.subset(np.arange(crops // 2))
        for layers in range(1, groups + 1):
            config = RetrainConfig("reference", layers, model.hidden_size, 1.0, 2, TRAIN_BATCH_SIZE, 0.01)
            results = [retrain(model, window, config, seed=0, device=device, validation=validation) for _ in range(repeats)]
            points = len(results[0].validation_accuracy)
            rows.append(("frozen", model_name, resolution, layers, min(r.feature_seconds for r in results) / crops))
            rows.append(("train", model_name, resolution, layers,
                         min((r.compute_seconds - r.feature_seconds) / r.samples_processed for r in results)))
            rows.append(("validation", model_name, resolution, layers,
                         min((r.validation_seconds - r.validation_feature_seconds) for r in results) / (len(validation) * points)))
            bar.update(1)
    bar.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure a reference cost table on this machine: ``python -m ekya.profiling.reference_costs --output PATH``."""
    import torch

    from ekya.data.cache import write_text_atomically
    from ekya.models.names import MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="CSV file to write")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--resolutions", nargs="+", type=int, default=list(RESOLUTIONS))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the local executor's torch_threads)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the fastest is kept")
    args = parser.parse_args(argv)
    if any(r < 1 for r in args.resolutions):
        print(f"error: --resolutions must be >= 1 pixel, got {args.resolutions}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else (
        f"{platform.processor() or platform.machine()} CPU, {args.threads} torch thread(s)")
    rows = [row for model in args.models for row in measure_rows(model, args.resolutions, args.device, repeats=args.repeats)]
    header = [
        "Reference job costs: seconds per crop with the whole device (see ekya/profiling/reference_costs.py).",
        f"device: {args.device} ({device_name}); torch {torch.__version__}; python {platform.python_version()}",
        f"date: {datetime.date.today().isoformat()}",
        f"command: python -m ekya.profiling.reference_costs {' '.join(argv if argv is not None else sys.argv[1:])}",
    ]
    write_text_atomically(args.output, table_text(rows, header))
    print(f"wrote {len(rows)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
