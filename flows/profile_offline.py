"""Entry point: profile a dataset offline and write the trace that the simulated executor replays.

    python -m flows.profile_offline dataset=synthetic
    python -m flows.profile_offline dataset=synthetic model=shufflenet_v2_x0_5 streams=2 windows=4 output=/tmp/trace
    python -m flows.window_loop dataset=synthetic executor=simulated     (replays it)

Measures the inference space and every (stream, window, retraining configuration) cell with
real training (see :mod:`ekya.profiling.offline`); a stopped run resumes from its finished cells.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.profiling.offline import OfflineProfiler, StreamRows
from flows.config import build_offline_profiler
from flows.errors import exit_on_bad_input, refuse_bad_overrides


@task(name="prepare-costs", cache_policy=NO_CACHE)
def prepare_costs(profiler: OfflineProfiler) -> None:
    profiler.prepare_costs()


@task(name="profile-stream", cache_policy=NO_CACHE)
def profile_stream(profiler: OfflineProfiler, stream: str) -> StreamRows:
    return profiler.profile_stream(stream)


@task(name="write-trace", cache_policy=NO_CACHE)
def write_trace(profiler: OfflineProfiler, streams: list[StreamRows]) -> str:
    return str(profiler.write(streams))


@flow(name="profile-offline")
def profile_offline(config: dict[str, Any]) -> str:
    """Profile every stream of the configured dataset; returns the trace folder."""
    profiler = build_offline_profiler(config)
    print(
        f"profiling {len(profiler.stream_names)} streams x {max(profiler.windows.values())} windows x "
        f"{len(profiler.retrain_configs)} retraining configurations ({profiler.num_cells} cells) of "
        f"{config['dataset'].get('name', 'dataset')} with {profiler.model.name} -> {profiler.output}",
        flush=True,
    )
    prepare_costs(profiler)
    # Streams run one after another: training seeds the global torch RNG, so concurrent streams
    # would not be deterministic.
    streams = [profile_stream(profiler, stream) for stream in profiler.stream_names]
    output = write_trace(profiler, streams)
    print(f"trace written to {output} ({profiler.cells_trained} cells trained, {profiler.num_cells - profiler.cells_trained} resumed)")
    return output


@refuse_bad_overrides("profile_offline")
@hydra.main(version_base="1.3", config_path="../conf", config_name="profile_offline")
@exit_on_bad_input
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    build_offline_profiler(config)  # fail on bad input before Prefect starts
    profile_offline(config)


if __name__ == "__main__":
    main()
