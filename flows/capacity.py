"""Entry point: how many streams a box of G GPUs holds at an accuracy target (the paper's Table 2).

    python -m flows.window_loop -m experiment=capacity          # the streams x GPUs sweep first
    python -m flows.capacity experiment=capacity capacity.accuracy_target=0.7
    python -m flows.capacity experiment=capacity capacity.gpus=2

Reads the experiment's sweeps back from MLflow, prints a table (schedulers x GPU counts: the
largest stream count whose mean accuracy reaches the target) and writes it as ``capacity.md``
and ``capacity.csv`` under ``capacity.output_dir`` (default ``reports/capacity/``); see
:func:`ekya_studies.capacity.write_capacity`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ekya_studies.capacity import write_capacity
from flows.errors import exit_on_bad_input


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    options = cfg.capacity
    write_capacity(str(cfg.tracking.uri), str(cfg.tracking.experiment), float(options.accuracy_target), str(options.output_dir),
                   None if options.gpus is None else float(options.gpus), all_sweeps=cfg.report.sweeps != "latest")


if __name__ == "__main__":
    main()
