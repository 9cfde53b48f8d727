"""The train_golden flow end to end on tiny data: checkpoint where the golden labeler looks, bad input."""

import os
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ekya.inference.labelers import GoldenModelLabeler
from ekya.errors import EkyaError

from flows.config import build_labeling, build_source
from flows.train_golden import load_training_windows, train_golden
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT

TINY_DATASET = (
    "dataset.num_streams=1", "dataset.num_windows=2", "dataset.crops_per_window=60", "dataset.frames_per_window=12",
    "dataset.holdout_streams=1", "dataset.holdout_windows=1",
)


def compose_train_golden(tmp_path, *overrides):
    """The resolved train_golden config on tiny synthetic data, with caches under ``tmp_path``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train_golden",
            overrides=[f"paths.cache_dir={tmp_path}/cache", *TINY_DATASET, "architecture=resnet18", "epochs=1", "batch_size=16", *overrides],
        )
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_flow_writes_the_checkpoint_the_golden_labeler_reads(tmp_path, one_torch_thread):
    config = compose_train_golden(tmp_path, "+labeler=golden", "labeler.architecture=resnet18", "labeler.measure_against=golden")
    expected = f"{tmp_path}/cache/golden/synthetic-resnet18.pt"
    assert config["output"] == expected
    assert config["labeler"]["checkpoint"] == expected
    summary = train_golden(config)
    assert summary["output"] == expected
    assert (summary["num_train"], summary["num_validation"]) == (48, 12)
    assert 0.0 <= summary["validation_accuracy"] <= 1.0 and 0.0 <= summary["train_accuracy"] <= 1.0
    assert sorted(p.name for p in (tmp_path / "cache" / "golden").iterdir()) == ["synthetic-resnet18.pt"]

    labeling = build_labeling(config["labeler"], build_source(config["dataset"]))
    assert isinstance(labeling.labeler, GoldenModelLabeler) and labeling.measure_against == "golden"
    window = build_source(config["dataset"]).window("cam0", 1)
    result = labeling.labeler.label(window)
    assert result.labels.shape == (60,) and result.gpu_seconds > 0


def test_flow_can_train_on_stream_windows_only(tmp_path, one_torch_thread):
    config = compose_train_golden(tmp_path, "holdout=false", "stream_windows=null", "validation_fraction=0.5", f"output={tmp_path}/g.pt")
    summary = train_golden(config)
    assert (summary["num_train"], summary["num_validation"]) == (60, 60)  # both windows of cam0
    assert (tmp_path / "g.pt").is_file()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["architecture=vgg16"], "unknown golden model 'vgg16'; valid golden models: resnet18,"),
        (["epochs=0"], "epochs must be an int >= 1, got 0"),
        (["holdout=false"], "no training data: holdout is false and stream_windows is 0"),
        (["validation_fraction=1.0"], r"validation_fraction must be in \[0, 1\), got 1.0"),
        (["learning_rate=0"], "learning_rate must be > 0, got 0"),
    ],
)
def test_bad_settings_are_refused_before_training(tmp_path, overrides, message):
    with pytest.raises(EkyaError, match=message):
        train_golden.fn(compose_train_golden(tmp_path, *overrides))
    assert not (tmp_path / "cache" / "golden").exists()


def test_command_line_error_is_one_clear_line(tmp_path):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    result = subprocess.run(
        [sys.executable, "-m", "flows.train_golden", "architecture=vgg16", f"paths.cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/outputs"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 2
    assert "error: unknown golden model 'vgg16'; valid golden models: resnet18, resnet34, resnet50" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "cache" / "golden").exists()


def test_dataset_without_hold_out_windows_needs_stream_windows(tmp_path):
    config = compose_train_golden(tmp_path, "dataset.holdout_streams=0")
    with pytest.raises(EkyaError, match="the dataset has no hold-out windows; use holdout=false stream_windows=N"):
        load_training_windows.fn(config["dataset"], True, 0)
    assert [w.stream for w in load_training_windows.fn(config["dataset"], False, 1)] == ["cam0"]


def test_training_data_of_one_class_is_refused_naming_it(tmp_path):
    from tests.data.fixtures import two_object_frames, write_cityscapes

    write_cityscapes(tmp_path / "cs", {"aachen": two_object_frames(8, ["person"])})
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    result = subprocess.run(
        [sys.executable, "-m", "flows.train_golden", "dataset=cityscapes", f"dataset.root={tmp_path}/cs", "dataset.frames_per_window=4",
         "dataset.min_box_pixels=8", f"paths.cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/outputs"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the golden model's training data holds 1 class(es): person (8 crops); a classifier needs "
                                     "at least 2 of person, car, truck, bus, bicycle, motorcycle: add windows with other classes "
                                     "(stream_windows=N or null, holdout=true, dataset.holdout_streams=[...]) or train on another dataset")
    assert not (tmp_path / "cache" / "golden").exists()
