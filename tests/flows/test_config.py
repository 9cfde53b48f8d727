"""flows/config.py: the one place where a config becomes objects; unknown keys and unused overrides are refused."""

import pytest

from ekya.data.synthetic import SyntheticSource
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
    source = SyntheticSource(num_streams=1, num_windows=2, crops_per_window=40, frames_per_window=8)
    labeling = build_labeling({"name": "golden", "checkpoint": str(golden_checkpoint), "architecture": "resnet18", "measure_against": "golden"},
                              source)
    assert isinstance(labeling.labeler, GoldenModelLabeler) and labeling.measure_against == "golden"
    assert build_labeling({"name": "ground_truth"}, source).measure_against == "ground_truth"
    with pytest.raises(EkyaError, match="unknown measure_against 'human'; valid: ground_truth, golden"):
        build_labeling({"name": "ground_truth", "measure_against": "human"}, source)
    with pytest.raises(EkyaError, match="labeler config needs a name"):
        build_labeling({"checkpoint": str(golden_checkpoint)}, source)


@pytest.mark.parametrize("budget", [0, 9, 2.5, True])
def test_a_labeling_budget_beyond_a_windows_frames_is_refused(budget):
    source = SyntheticSource(num_streams=1, num_windows=2, crops_per_window=40, frames_per_window=8)
    with pytest.raises(EkyaError, match=rf"^labeler.label_frames={budget!r}; valid: 1..8 \(the frames a window holds\), or null"):
        build_labeling({"name": "ground_truth", "label_frames": budget}, source)
    assert build_labeling({"name": "ground_truth", "label_frames": 8}, source).label_frames == 8


def _video_folder(tmp_path, seconds=4):
    from tests.data.fixtures import two_object_frames, write_sample_list, write_video

    root = tmp_path / "data" / "video"
    root.mkdir(parents=True)
    for clip in ("cam1", "cam2"):
        frames = two_object_frames(10 * seconds)
        write_video(root / f"{clip}.mp4", frames)
        write_sample_list(root / f"{clip}.csv", frames)
    return root


def test_real_dataset_without_holdout_streams_trains_the_base_model_on_each_streams_first_window(tmp_path):
    _video_folder(tmp_path)
    run = build_executor(compose_config(tmp_path, "dataset=video", "dataset.window_seconds=1", "dataset.min_box_pixels=8", "streams=1"))
    assert run.stream_names == ["cam1"] and run.window_indices == [1, 2]  # 4 windows, the first held out
    assert [(w.stream, w.index) for w in run.source.holdout()] == [("cam1", 0)]
    with pytest.raises(EkyaError, match=r"^the dataset has no hold-out windows to train the base model on: set "
                                        r"dataset.holdout_first_windows=N .* or dataset.holdout_streams=\[NAME, ...\]"):
        build_executor(compose_config(tmp_path, "dataset=video", "dataset.window_seconds=1", "dataset.holdout_first_windows=0"))
    with pytest.raises(EkyaError, match=r"stream 'cam1' has 1 window\(s\) to stream; continuous learning needs at least 2: "
                                        r"set a shorter dataset.window_seconds or a smaller dataset.holdout_first_windows"):
        build_executor(compose_config(tmp_path, "dataset=video", "dataset.window_seconds=2", "dataset.min_box_pixels=8"))


@pytest.mark.parametrize("dataset", ["urban_traffic", "urban_building", "video", "cityscapes", "waymo"])
def test_a_file_backed_dataset_is_named_after_its_config(tmp_path, dataset):
    from flows.config import build_source

    config = compose_config(tmp_path, f"dataset={dataset}", f"dataset.root={tmp_path}/missing")
    with pytest.raises(EkyaError, match=rf"^{dataset}: root folder .*missing does not exist"):
        build_source(config["dataset"])
    assert isinstance(build_source(compose_config(tmp_path)["dataset"]), SyntheticSource)  # synthetic takes no name


def test_mog2_detection_is_labelled_by_the_golden_checkpoint_and_charged_by_labeler_detector(tmp_path, golden_checkpoint):
    from tests.data.fixtures import moving_objects_video

    root = tmp_path / "data" / "video"
    root.mkdir(parents=True)
    moving_objects_video(root / "corner.avi", frames=40)
    detection = ["dataset.detection.fps=5", "dataset.detection.history=50", "dataset.detection.warmup_frames=8",
                 "dataset.detection.min_area_pixels=150"]
    config = compose_config(tmp_path, "dataset=video", "dataset.window_seconds=1", "dataset.min_box_pixels=8", "dataset.detector=mog2",
                            f"dataset.detection.classifier={golden_checkpoint}", *detection, "labeler=detector")
    run = build_executor(config)
    window = run.source.window("corner", 1)
    assert len(window) > 0 and window.labeling_seconds > 0
    labeled = run.labeling.label(window, run.source.window("corner", 2))
    assert labeled.gpu_seconds == window.labeling_seconds
    with pytest.raises(EkyaError, match=r"dataset.detector=mog2 finds boxes without labels.*dataset.detection.classifier=PATH"):
        build_executor(compose_config(tmp_path, "dataset=video", "dataset.detector=mog2"))
    with pytest.raises(EkyaError, match=r"golden.*missing.pt"):
        build_executor(compose_config(tmp_path, "dataset=video", "dataset.detector=mog2", f"dataset.detection.classifier={tmp_path}/missing.pt"))
    with pytest.raises(EkyaError, match="^labeler=detector labels with the dataset's detection stage, which this dataset has none of"):
        build_executor(compose_config(tmp_path, "labeler=detector"))


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
    with pytest.raises(EkyaError, match=r"^executor.cost=reference: no reference cost table ships for device 'cuda'"):
        build_executor(compose_config(tmp_path, "executor.device=cuda", "executor.isolation=none"))
    run = build_executor(compose_config(tmp_path, "executor.device=cuda", "executor.isolation=none", "executor.cost=calibrated"))
    assert run.settings.gpus == 2.0 and run.placement.gpus == 2 and run.real_time  # jobs=auto: concurrent on cuda
    with pytest.raises(EkyaError, match=r"gpus=4: executor.device=cuda sees 2 GPU\(s\) .*valid: a number in \(0, 2\]"):
        build_executor(compose_config(tmp_path, "executor.device=cuda", "gpus=4", "executor.cost=calibrated"))
    with pytest.raises(EkyaError, match=r"executor.device=cuda:3: 2 CUDA device\(s\) visible .*valid: cuda, cuda:0, cuda:1"):
        build_executor(compose_config(tmp_path, "executor.device=cuda:3"))
    with pytest.raises(EkyaError, match=r"executor.device='tpu'; valid: cpu, cuda, cuda:N"):
        build_executor(compose_config(tmp_path, "executor.device=tpu"))
