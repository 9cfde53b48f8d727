"""flows/config.py: the one place where a config becomes objects; unknown keys and unused overrides are refused."""

import pytest

from ekya.errors import EkyaError
from ekya.execution.local.run import LocalRun
from ekya.execution.simulated import SimulatedRun
from ekya.inference.labelers import GoldenModelLabeler
from flows.config import build_executor, build_labeling, build_scheduler, check_overrides, window_settings
from tests.flows.helpers import compose_config


def test_simulated_settings_come_from_the_config_then_the_trace(tmp_path):
    run = build_executor(compose_config(tmp_path, "experiment=paper_example", "delta=0.5", "profiler.noise_std=5"))
    assert isinstance(run, SimulatedRun)
    assert (run.settings.gpus, run.settings.delta, run.settings.min_accuracy, run.settings.window_seconds) == (3.0, 0.5, 0.4, 120.0)
    assert run.noise_std == 5.0


def test_settings_fall_back_to_one_gpu_without_a_trace():
    config = {"gpus": None, "delta": None, "min_accuracy": None}
    settings = window_settings(config, 60.0, lambda shares: shares)
    assert (settings.gpus, settings.delta, settings.min_accuracy) == (1.0, 0.1, 0.0)


def test_local_run_is_built_from_its_parts_without_training(tmp_path):
    run = build_executor(compose_config(tmp_path, "profiler=oracle", "profiler.noise_std=2", "executor.cost=measured"))
    assert isinstance(run, LocalRun)
    assert run.estimation.mode == "oracle" and run.estimation.noise_std == 2.0 and run.estimation.pruning is None
    assert run.costs.mode == "measured"
    assert not (tmp_path / "cache" / "models").exists()
    assert not run.real_time  # jobs=auto: virtual on the cpu


def test_uniform_alias_is_resolved_on_the_trace(tmp_path):
    config = compose_config(tmp_path, "experiment=paper_example", "scheduler=uniform", "scheduler.retrain_config=low")
    assert build_scheduler(config, build_executor(config)).retrain_config == "Cfg2"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+profiler.typo=1"], "profiler: unknown key(s) typo; valid: name, noise_std, sample_fraction"),
        (["profiler=oracle", "+profiler.sample_fraction=0.5"], "profiler: unknown key(s) sample_fraction; valid: name, noise_std"),
        (["+model.depth=3"], "model: unknown key(s) depth"),
        (["+executor.gpus=2"], "executor: unknown key(s) gpus"),
    ],
)
def test_unknown_keys_are_refused_with_the_valid_ones(tmp_path, overrides, message):
    with pytest.raises(EkyaError) as error:
        build_executor(compose_config(tmp_path, *overrides))
    assert message in str(error.value)


@pytest.mark.parametrize("override", ["profiler.sample_fraction=0.05", "profiler=oracle", "model=mobilenet_v2", "labeler=golden",
                                      "retrain_space.configs=[]", "model.base_epochs=2"])
def test_overrides_the_simulated_executor_does_not_read_are_refused(tmp_path, override):
    config = compose_config(tmp_path, "experiment=paper_example")
    with pytest.raises(EkyaError, match=f"executor=simulated does not use {override.split('=')[0]}"):
        check_overrides(config, ["experiment=paper_example", override])


def test_overrides_both_executors_read_pass(tmp_path):
    check_overrides(compose_config(tmp_path, "experiment=paper_example"), ["profiler.noise_std=5", "gpus=2", "dataset=waymo", "seed=3"])
    check_overrides(compose_config(tmp_path), ["profiler.sample_fraction=0.05", "model=mobilenet_v2"])


def test_labeler_config_separates_measure_against(golden_checkpoint):
    labeling = build_labeling({"name": "golden", "checkpoint": str(golden_checkpoint), "architecture": "resnet18", "measure_against": "golden"})
    assert isinstance(labeling.labeler, GoldenModelLabeler) and labeling.measure_against == "golden"
    assert build_labeling({"name": "ground_truth"}).measure_against == "ground_truth"
    with pytest.raises(EkyaError, match="unknown measure_against 'human'; valid: ground_truth, golden"):
        build_labeling({"name": "ground_truth", "measure_against": "human"})
    with pytest.raises(EkyaError, match="labeler config needs a name"):
        build_labeling({"checkpoint": str(golden_checkpoint)})


def test_placement_key_builds_the_rule_for_either_executor(tmp_path):
    simulated = build_executor(compose_config(tmp_path, "experiment=paper_example", "executor.placement=per_gpu"))
    assert simulated.placement.gpus == 3
    assert build_executor(compose_config(tmp_path, "experiment=paper_example")).placement is None  # pooled by default
    assert build_executor(compose_config(tmp_path)).placement.gpus == 1  # local: per_gpu on its one device
    with pytest.raises(EkyaError, match="executor.placement=per_gpu needs a whole number of GPUs, got gpus=2.5"):
        build_executor(compose_config(tmp_path, "experiment=paper_example", "executor.placement=per_gpu", "gpus=2.5"))


def test_cuda_without_a_gpu_and_more_gpus_than_visible_are_refused(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EkyaError, match=r"executor.device=cuda: no CUDA device is visible .*; valid here: cpu"):
        build_executor(compose_config(tmp_path, "executor.device=cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(EkyaError, match=r"^executor.isolation=mps: nvidia-cuda-mps-control is not on PATH .*valid: executor.isolation=none"):
        build_executor(compose_config(tmp_path, "executor.device=cuda"))  # MPS cannot start: refused before anything runs
    run = build_executor(compose_config(tmp_path, "executor.device=cuda", "executor.isolation=none"))  # G from the visible devices
    assert run.settings.gpus == 2.0 and run.placement.gpus == 2 and run.real_time  # jobs=auto: concurrent on cuda
    with pytest.raises(EkyaError, match=r"gpus=4: executor.device=cuda sees 2 GPU\(s\) .*valid: a number in \(0, 2\]"):
        build_executor(compose_config(tmp_path, "executor.device=cuda", "gpus=4"))
    with pytest.raises(EkyaError, match=r"executor.device=cuda:3: 2 CUDA device\(s\) visible .*valid: cuda, cuda:0, cuda:1"):
        build_executor(compose_config(tmp_path, "executor.device=cuda:3"))
    with pytest.raises(EkyaError, match=r"executor.device='tpu'; valid: cpu, cuda, cuda:N"):
        build_executor(compose_config(tmp_path, "executor.device=tpu"))
