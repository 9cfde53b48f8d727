"""Entry point: profile a dataset offline and write the trace that the simulated executor replays.

    python -m flows.profile_offline dataset=synthetic
    python -m flows.profile_offline dataset=synthetic model=shufflenet_v2_x0_5 streams=2 windows=4 output=/tmp/trace
    python -m flows.window_loop dataset=synthetic executor=simulated     (replays it)

Measures the inference space and every (stream, window, retraining configuration) cell with
real training (see :mod:`ekya.profiling.offline`); a stopped run resumes from its finished cells.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.data.base import CLASSES, StreamSource
from ekya.errors import EkyaError
from ekya.execution.local import ModelSettings
from ekya.inference.config import load_inference_space
from ekya.profiling.offline import InferenceMeasurement, OfflineProfiler, StreamRows
from ekya.training.config import load_retrain_space


def build_source(dataset: dict[str, Any]) -> StreamSource:
    """The dataset a ``conf/dataset/*.yaml`` describes (its ``name`` key is not a constructor argument)."""
    arguments = {key: value for key, value in dataset.items() if key != "name"}
    try:
        return hydra.utils.instantiate(arguments)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, EkyaError):
            raise cause from None
        raise EkyaError(f"dataset {dataset.get('name')!r}: {cause or error}") from None


def build_model_settings(model: dict[str, Any]) -> ModelSettings:
    """The edge-model settings of a ``conf/model/*.yaml``."""
    if model.get("num_classes", len(CLASSES)) != len(CLASSES):
        raise EkyaError(f"model.num_classes must be {len(CLASSES)} (the classes {', '.join(CLASSES)}), got {model['num_classes']!r}")
    fields = ("name", "hidden_size", "base_epochs", "base_batch_size", "base_learning_rate")
    return ModelSettings(**{name: model[name] for name in fields if name in model})


def build_profiler(config: dict[str, Any]) -> OfflineProfiler:
    """The profiler a config describes; validates everything before any training starts."""
    return OfflineProfiler(
        build_source(config["dataset"]),
        build_model_settings(config["model"]),
        load_retrain_space(config["retrain_space"]["configs"]),
        load_inference_space(config["inference_space"]["configs"]),
        config["output"],
        seed=config.get("seed", 0),
        streams=config.get("streams"),
        windows=config.get("windows"),
        start_from=config.get("start_from", "best"),
        cache_dir=config.get("base_model_dir"),
        device=config.get("device", "cpu"),
        torch_threads=config.get("torch_threads", 1),
        progress=bool(config.get("progress", True)),
    )


@task(name="profile-inference", cache_policy=NO_CACHE)
def profile_inference(profiler: OfflineProfiler) -> list[InferenceMeasurement]:
    return profiler.profile_inference()


@task(name="profile-stream", cache_policy=NO_CACHE)
def profile_stream(profiler: OfflineProfiler, stream: str) -> StreamRows:
    return profiler.profile_stream(stream)


@task(name="write-trace", cache_policy=NO_CACHE)
def write_trace(profiler: OfflineProfiler, streams: list[StreamRows], inference: list[InferenceMeasurement]) -> str:
    return str(profiler.write(streams, inference))


@flow(name="profile-offline")
def profile_offline(config: dict[str, Any]) -> str:
    """Profile every stream of the configured dataset; returns the trace folder."""
    profiler = build_profiler(config)
    print(
        f"profiling {len(profiler.stream_names)} streams x {max(profiler.windows.values())} windows x "
        f"{len(profiler.retrain_configs)} retraining configurations ({profiler.num_cells} cells) of "
        f"{config['dataset'].get('name', 'dataset')} with {profiler.model.name} -> {profiler.output}",
        flush=True,
    )
    inference = profile_inference(profiler)
    # Streams run one after another: training seeds the global torch RNG, so concurrent streams
    # would not be deterministic.
    streams = [profile_stream(profiler, stream) for stream in profiler.stream_names]
    output = write_trace(profiler, streams, inference)
    print(f"trace written to {output} ({profiler.cells_trained} cells trained, {profiler.num_cells - profiler.cells_trained} resumed)")
    return output


@hydra.main(version_base="1.3", config_path="../conf", config_name="profile_offline")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        build_profiler(config)  # fail on bad input before Prefect starts
        profile_offline(config)
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
