"""Entry point: train the golden model that labels crops, and save its checkpoint.

    python -m flows.train_golden dataset=synthetic
    python -m flows.train_golden architecture=resnet101 epochs=20 stream_windows=null
    python -m flows.train_golden architecture=resnet18 epochs=1 output=/tmp/golden.pt

Loads the training windows (the dataset's hold-out windows and/or the first windows of its
streams), trains the model with a progress bar, prints its accuracy on a held-out split of
the crops and writes the checkpoint atomically to ``output`` (by default
``${paths.cache_dir}/golden/<dataset>-<architecture>.pt``, where conf/labeler/golden.yaml looks).
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.data.base import CLASSES, Window
from ekya.models.golden import save_golden_checkpoint
from ekya.training.golden import GoldenTrainResult, check_golden_classes, golden_training_windows, train_golden_model
from flows.config import build_source, check_golden_training
from flows.errors import exit_on_bad_input, refuse_bad_overrides


@task(name="load-training-windows", cache_policy=NO_CACHE)
def load_training_windows(dataset_config: dict[str, Any], holdout: bool, stream_windows: int | None) -> list[Window]:
    return golden_training_windows(build_source(dataset_config), holdout, stream_windows)


@task(name="train-golden-model", cache_policy=NO_CACHE)
def train(windows: list[Window], config: dict[str, Any]) -> GoldenTrainResult:
    return train_golden_model(
        windows,
        architecture=config["architecture"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        learning_rate=float(config["learning_rate"]),
        validation_fraction=float(config["validation_fraction"]),
        seed=int(config["seed"]),
        device=str(config["device"]),
        progress=True,
    )


@flow(name="train-golden")
def train_golden(config: dict[str, Any]) -> dict[str, Any]:
    """Train and save the golden model of one configuration; returns a summary (accuracies in [0, 1])."""
    check_golden_training(config)
    windows = load_training_windows(config["dataset"], bool(config["holdout"]), config["stream_windows"])
    classes = check_golden_classes(windows)
    absent = [name for name in CLASSES if name not in classes]
    print(f"training golden {config['architecture']} on {sum(len(w) for w in windows)} crops of {len(windows)} windows "
          f"for {config['epochs']} epochs on {config['device']}; crops per class: "
          + ", ".join(f"{name} {n}" for name, n in classes.items())
          + (f"; none of {', '.join(absent)} (the golden model will never label them)" if absent else ""), flush=True)
    result = train(windows, config)
    path = save_golden_checkpoint(result.model, config["output"])
    validation = result.validation_accuracy[-1] if result.validation_accuracy else None
    per_epoch = " ".join(f"{100 * accuracy:.1f}" for accuracy in result.validation_accuracy)
    print(f"trained in {result.compute_seconds:.1f} s: train accuracy {100 * result.train_accuracy:.2f}%, "
          + (f"held-out accuracy {100 * validation:.2f}% on {result.num_validation} crops (per epoch: {per_epoch})"
             if validation is not None else "no held-out split"))
    print(f"golden checkpoint: {path}")
    return {
        "output": str(path),
        "train_seconds": result.compute_seconds,
        "num_train": result.num_train,
        "num_validation": result.num_validation,
        "train_accuracy": result.train_accuracy,
        "validation_accuracy": validation,
    }


@refuse_bad_overrides("train_golden")
@hydra.main(version_base="1.3", config_path="../conf", config_name="train_golden")
@exit_on_bad_input
def main(cfg: DictConfig) -> float | None:
    config = OmegaConf.to_container(cfg, resolve=True)
    check_golden_training(config)  # fail on bad input before Prefect starts
    # The training data too (fewer than two classes, a broken dataset): one line, not a flow's traceback.
    # The flow loads the windows again, from the crop cache.
    check_golden_classes(golden_training_windows(build_source(config["dataset"]), bool(config["holdout"]), config["stream_windows"]))
    return train_golden(config)["validation_accuracy"]


if __name__ == "__main__":
    main()
