"""The offline-profiling flow end to end: Hydra config -> Prefect flow -> trace the window loop replays."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace
from flows.config import build_offline_profiler
from flows.profile_offline import profile_offline
from flows.window_loop import window_loop
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT, compose_config

TINY = [
    "dataset.num_streams=2", "dataset.num_windows=3", "dataset.crops_per_window=60", "dataset.frames_per_window=12",
    "dataset.holdout_streams=1", "dataset.holdout_windows=1",
    "model=shufflenet_v2_x0_5", "model.base_epochs=1", "model.hidden_size=16",
    "retrain_space.configs=[{train_layers:1,hidden_size:16,subsample:0.5,epochs:[1,2]}]",
    "inference_space.configs=[{sampling_rate:[1.0,0.5]}]",
    "progress=false",
]


def compose_profile_config(tmp_path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="profile_offline", overrides=[f"paths.cache_dir={tmp_path}/cache", *TINY, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.slow
def test_flow_writes_the_trace_the_simulated_window_loop_reads(tmp_path):
    config = compose_profile_config(tmp_path)
    output = profile_offline(config)
    assert output == f"{tmp_path}/cache/traces/synthetic"
    trace = load_trace(output)
    assert trace.streams == ["cam0", "cam1"] and trace.num_windows == 3
    assert sorted(trace.retrain_profile("cam1", 2).names) == ["c00", "c01"]
    assert set(trace.inference_table("cam0")) == {"c00", "c01"}

    # executor=simulated looks in ${paths.cache_dir}/traces/${dataset.name} by default
    summary = window_loop(compose_config(tmp_path, "executor=simulated", "scheduler=thief"))
    assert 0 <= summary["summary/accuracy_mean"] <= 1


def cli(tmp_path, *overrides):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run(
        [sys.executable, "-m", "flows.profile_offline", f"paths.cache_dir={tmp_path}/cache",
         f"hydra.run.dir={tmp_path}/outputs", f"output={tmp_path}/trace", *overrides],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600,
    )


def test_bad_value_exits_with_one_clear_message_and_no_trace(tmp_path):
    result = cli(tmp_path, "windows=1")
    assert result.returncode == 2, result.stderr
    assert "error: stream cam0 would have 1 window(s); offline profiling needs at least 2" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "trace").exists()


def test_dataset_errors_surface_as_ekya_errors(tmp_path):
    config = compose_profile_config(tmp_path, "dataset.crops_per_window=0")
    with pytest.raises(EkyaError, match="synthetic dataset: crops_per_window"):
        build_offline_profiler(config)
    config = compose_profile_config(tmp_path, "+dataset.colour=red")
    with pytest.raises(EkyaError, match="dataset 'synthetic': .*colour"):
        build_offline_profiler(config)
    config = compose_profile_config(tmp_path, "model.num_classes=10")
    with pytest.raises(EkyaError, match="model.num_classes must be 6"):
        build_offline_profiler(config)


@pytest.mark.slow
def test_unknown_model_and_key_are_one_line(tmp_path):
    result = cli(tmp_path, "model=vgg")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: unknown model 'vgg'; valid: mobilenet_v2, resnet18, shufflenet_v2_x0_5"]
    result = cli(tmp_path, "epochs=3")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown key 'epochs'; valid: base_model_dir, cost, dataset, device"), line
