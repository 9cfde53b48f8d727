"""A window's jobs as real processes on the CPU: side by side, a re-plan restarts them at new shares, training resumes."""

from pathlib import Path

import numpy as np
import pytest

from ekya.execution.gpu.jobs import StreamJobs, Workers, job_specs, play_concurrently, write_crops
from ekya.execution.gpu.worker import read_status
from ekya.scheduling import Problem, build_scheduler
from tests.scheduling.helpers import stream


def tiny_jobs(tmp_path, streams=2):
    from ekya.models.checkpoints import save_checkpoint
    from ekya.models.factory import build_model

    model = save_checkpoint(build_model("shufflenet_v2_x0_5", hidden_size=8), tmp_path / "serving.pt")
    rng = np.random.default_rng(0)
    jobs = []
    for s in range(streams):
        data = write_crops(tmp_path / f"{s}.npz", rng.integers(0, 256, (32, 3, 16, 16)), rng.integers(0, 6, 32))
        retrain = {"c0": {"train_layers": 1, "hidden_size": 8, "epochs": 1, "batch_size": 8, "learning_rate": 0.01},
                   "c1": {"train_layers": 1, "hidden_size": 8, "epochs": 4000, "batch_size": 8, "learning_rate": 0.01}}
        jobs.append(StreamJobs(str(model), data, data, retrain, {"i0": {"batch_size": 16, "resolution": None}}))
    return jobs


@pytest.mark.slow
def test_a_worker_asked_for_cuda_without_it_fails_in_one_line(tmp_path):
    jobs = tiny_jobs(tmp_path, 1)
    workers = Workers(tmp_path / "jobs")
    worker = workers.start((0, "inference"), job_specs(jobs, tmp_path, "cuda")(0, "inference", "i0"), gpu=0, share=1.0)
    assert worker.process.wait(120) == 1
    assert worker.status()["state"] == "failed" and "CUDA is not available in this worker" in worker.status()["error"]


@pytest.mark.slow
def test_a_replan_restarts_jobs_at_new_shares_and_training_resumes(tmp_path):
    """Fair shares (4 jobs, 0.25 each); stream a's 4-step job ends first, its share is split over the rest: every other job
    restarts, b's 16000-step job from the step it had reached."""
    jobs = tiny_jobs(tmp_path)
    a = stream("a", serving=0.5, costs=[1.0], accuracies=[0.9])
    b = stream("b", serving=0.5, costs=[400.0], accuracies=[0.9])
    b = type(b)(**{**b.__dict__, "retrain_names": ("c1",)})
    problem = Problem((a, b), gpus=1.0, delta=0.05, window_seconds=120.0)
    workers = Workers(tmp_path / "jobs")
    outcome = play_concurrently(problem, build_scheduler("fair"), job_specs(jobs, tmp_path / "out", "cpu"), workers)
    assert outcome.finish_seconds[0] is not None and outcome.finish_seconds[1] is None
    assert outcome.decisions == 2 and outcome.restarts == 3
    first, second = outcome.segments[0].placement, outcome.segments[1].placement
    assert [round(job.share, 6) for job in first.jobs] == [0.25] * 4
    assert [job.share for job in second.jobs] == pytest.approx([1 / 3] * 3)
    assert Path(tmp_path / "out" / "0-c0.pt").is_file()  # a's retrained model
    b_train = outcome.statuses[(1, "train")]
    assert b_train["state"] == "preempted" and b_train["resumed_from"] > 0 and b_train["step"] > b_train["resumed_from"]
    assert (tmp_path / "out" / "1-c1.state.pt").is_file()  # b keeps its progress for the next window
    assert outcome.statuses[(0, "inference")]["frames"] > 0
    assert not workers.running
    for status in (tmp_path / "jobs").glob("*.status.json"):
        assert read_status(status)["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
