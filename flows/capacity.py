"""Entry point: how many streams a box of G GPUs holds at an accuracy target (the paper's Table 2).

    python -m flows.window_loop -m experiment=capacity          # the streams x GPUs sweep first
    python -m flows.capacity experiment=capacity capacity.accuracy_target=0.7
    python -m flows.capacity experiment=capacity capacity.gpus=2

Reads the experiment's sweeps back from MLflow, prints a table (schedulers x GPU counts: the
largest stream count whose mean accuracy reaches the target) and writes it as ``capacity.md``
and ``capacity.csv`` under ``capacity.output_dir`` (default ``reports/capacity/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ekya.errors import EkyaError
from ekya.tracking.capacity import capacity_markdown, capacity_table
from ekya.tracking.report import load_sweep


def capacity(tracking_uri: str, experiment: str, accuracy_target: float, output_dir: str,
             gpus: float | None = None, all_sweeps: bool = True) -> Path:
    """Write ``capacity.md`` and ``capacity.csv`` for ``experiment``; returns the Markdown file."""
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
def main(cfg: DictConfig) -> None:
    options = cfg.capacity
    try:
        capacity(str(cfg.tracking.uri), str(cfg.tracking.experiment), float(options.accuracy_target), str(options.output_dir),
                 None if options.gpus is None else float(options.gpus), all_sweeps=cfg.report.sweeps != "latest")
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
