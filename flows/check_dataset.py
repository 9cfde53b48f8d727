"""Entry point: check a dataset exactly as runs build it (same keys, same crop cache), and fill its cache.

    python -m flows.check_dataset dataset=cityscapes
    python -m flows.check_dataset dataset=video dataset.root=data/cam dataset.detector=mog2 dataset.detection.classifier=PATH
    python -m flows.check_dataset dataset=waymo dataset.holdout_streams=[SEG/FRONT] load=false

Loads every window once (running the detection stage of ``dataset.detector``, if any) and
prints streams, windows, hold-out windows, crops per class and what was skipped; exit status 1
if a window failed, 2 on bad input. ``python -m ekya.data.<dataset> --check`` does the same
from plain options, but cannot load the golden classifier that labels MOG2's boxes.
"""

from __future__ import annotations

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from ekya.data.crops import CroppedStreamSource, run_check
from ekya.errors import EkyaError
from flows.config import build_source
from flows.errors import exit_on_bad_input


@hydra.main(version_base="1.3", config_path="../conf", config_name="check_dataset")
@exit_on_bad_input
def main(cfg: DictConfig) -> int:
    config = OmegaConf.to_container(cfg, resolve=True)
    torch.set_num_threads(int(config["torch_threads"]))  # the detection stage's seconds are measured as runs measure them
    source = build_source(config["dataset"])
    if not isinstance(source, CroppedStreamSource):
        raise EkyaError(f"dataset {config['dataset'].get('name')!r} is generated, not read from files: there is nothing to check")
    code = run_check(source, load=bool(config["load"]))
    if code:
        raise SystemExit(code)
    return code


if __name__ == "__main__":
    main()
