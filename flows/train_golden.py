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

import sys
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.data.base import StreamSource, Window
from ekya.errors import EkyaError
from ekya.models.golden import GOLDEN_MODEL_NAMES, save_golden_checkpoint
from ekya.training.golden import GoldenTrainResult, train_golden_model


def check_config(config: dict[str, Any]) -> None:
    """Fail on bad settings before any data is loaded (the messages name the key)."""
    if config.get("architecture") not in GOLDEN_MODEL_NAMES:
        raise EkyaError(f"unknown golden model {config.get('architecture')!r}; valid golden models: {', '.join(GOLDEN_MODEL_NAMES)}")
    for key in ("epochs", "batch_size"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EkyaError(f"{key} must be an int >= 1, got {value!r}")
    learning_rate, fraction = config.get("learning_rate"), config.get("validation_fraction")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise EkyaError(f"learning_rate must be > 0, got {learning_rate!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise EkyaError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    stream_windows = config.get("stream_windows")
    if stream_windows is not None and (isinstance(stream_windows, bool) or not isinstance(stream_windows, int) or stream_windows < 0):
        raise EkyaError(f"stream_windows must be an int >= 0 or null (all windows), got {stream_windows!r}")
    if not config.get("holdout") and stream_windows == 0:
        raise EkyaError("no training data: holdout is false and stream_windows is 0; set holdout=true or stream_windows=N")
    if not config.get("output"):
        raise EkyaError("output must be the path of the checkpoint to write")


def build_dataset(dataset_config: dict[str, Any]) -> StreamSource:
    """The dataset a ``conf/dataset/*.yaml`` mapping describes (its ``name`` key is only a label)."""
    return instantiate({key: value for key, value in dataset_config.items() if key != "name"})


@task(name="load-training-windows", cache_policy=NO_CACHE)
def load_training_windows(dataset_config: dict[str, Any], holdout: bool, stream_windows: int | None) -> list[Window]:
    """The hold-out windows (if ``holdout``) plus the first ``stream_windows`` windows of every stream (None: all)."""
    source = build_dataset(dataset_config)
    windows = list(source.holdout()) if holdout else []
    if holdout and not windows:
        raise EkyaError(f"dataset {dataset_config.get('name')!r} has no hold-out windows; use holdout=false stream_windows=N")
    for stream in source.streams:
        count = source.num_windows(stream) if stream_windows is None else min(stream_windows, source.num_windows(stream))
        windows.extend(source.window(stream, index) for index in range(count))
    return windows


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
    check_config(config)
    windows = load_training_windows(config["dataset"], bool(config["holdout"]), config["stream_windows"])
    print(f"training golden {config['architecture']} on {sum(len(w) for w in windows)} crops of {len(windows)} windows "
          f"for {config['epochs']} epochs on {config['device']}", flush=True)
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_golden")
def main(cfg: DictConfig) -> float | None:
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        check_config(config)  # fail on bad input before Prefect starts
        return train_golden(config)["validation_accuracy"]
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
