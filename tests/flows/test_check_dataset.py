"""flows.check_dataset: a dataset loaded with a run's keys, summarised; bad input is one line and exit status 2."""

import os
import subprocess
import sys

import pytest

from ekya.data.video import main as video_main
from tests.data.fixtures import two_object_frames, write_sample_list, write_video
from tests.flows.helpers import PROJECT_ROOT


def run(tmp_path, *overrides):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, "-m", "flows.check_dataset", f"paths.cache_dir={tmp_path}/cache",
                           f"hydra.run.dir={tmp_path}/outputs", *overrides],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_check_dataset_summarises_with_a_runs_keys_and_refuses_bad_ones(tmp_path):
    root = tmp_path / "clips"
    frames = two_object_frames(30)
    write_video(root / "cam.mov", frames)
    write_sample_list(root / "cam.csv", frames)
    result = run(tmp_path, "dataset=video", f"dataset.root={root}", "dataset.window_seconds=1", "dataset.min_box_pixels=8")
    assert result.returncode == 0, result.stderr
    assert "video: 1 streams; base model trained on no hold-out streams, and the first 1 window(s) of each stream" in result.stdout
    assert [line.split()[:4] for line in result.stdout.splitlines() if line.startswith("cam ")] == [["cam", "2", "1", "60"]]
    assert list((tmp_path / "cache" / "crops" / "video").glob("*.npz"))  # the cache runs read
    bad = run(tmp_path, "dataset=video", f"dataset.root={root}", "dataset.detector=mog2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: video: dataset.detector=mog2 finds boxes without labels")


def test_video_check_command_points_mog2_to_check_dataset(tmp_path, capsys):
    frames = two_object_frames(10)
    write_video(tmp_path / "cam.mp4", frames)
    assert video_main(["--root", str(tmp_path), "--detector", "mog2", "--check"]) == 2
    assert "check with python -m flows.check_dataset dataset=video" in capsys.readouterr().err
