"""A window's jobs side by side on real GPUs, each held to its placed share; re-plans restart them.

:class:`Workers` starts each job as a worker process (:mod:`ekya.execution.gpu.worker`) with its
GPU and share in its environment (:mod:`ekya.execution.gpu.mps`), stops and restarts them.
:func:`play_concurrently` plays one window in real time:

1. the scheduler decides, the decision is placed on the GPUs (each job on one GPU), and every
   inference job and every training job with a share starts at once;
2. when a training job finishes, the scheduler re-plans the rest of the window (the finished
   stream serves its new model; a running job keeps its configuration, with the believed cost
   scaled by the fraction of its steps left), and the new decision is placed;
3. every job whose GPU or share changed is restarted with it: an inference job simply starts
   again, a training job is preempted (it saves its state at the next step) and resumes;
4. at the window's end every job is stopped; a training job still running does not finish in
   this window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import ekya
from ekya.errors import EkyaError
from ekya.execution.gpu.mps import MpsDaemon, client_environment
from ekya.execution.gpu.worker import read_status
from ekya.execution.placement import TRAIN, Placement, place
from ekya.scheduling.base import Scheduler
from ekya.scheduling.dynamics import finished_stream, running_stream
from ekya.scheduling.problem import Decision, Problem

#: Seconds a stopped worker gets to save its state before it is killed.
STOP_TIMEOUT_SECONDS = 60.0
#: Seconds between looks at the running jobs.
POLL_SECONDS = 0.2
#: The folder that holds the ``ekya`` package, put on each worker's PYTHONPATH.
PACKAGE_ROOT = Path(ekya.__file__).resolve().parents[1]


@dataclass
class Worker:
    """One running job process: its key (stream, kind), GPU, share, process and status file."""

    key: tuple[int, str]
    gpu: int
    share: float
    process: subprocess.Popen
    status_path: Path
    environment: dict[str, str]
    starts: int = 1

    def status(self) -> dict:
        return read_status(self.status_path)


class Workers:
    """Starts, stops and restarts job processes, each with its GPU and share.

    Args:
        folder: where specs, status files and worker logs go.
        daemon: the running MPS daemon (None: ``executor.isolation=none``).
        python: the interpreter the workers run.
    """

    def __init__(self, folder: str | os.PathLike, daemon: MpsDaemon | None = None, python: str = sys.executable) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.daemon = daemon
        self.python = python
        self.running: dict[tuple[int, str], Worker] = {}
        self.restarts = 0

    def command(self, spec_path: Path) -> list[str]:
        return [self.python, "-m", "ekya.execution.gpu.worker", str(spec_path)]

    def start(self, key: tuple[int, str], spec: dict, gpu: int, share: float) -> Worker:
        """Start job ``key`` (stream, kind) from ``spec`` on ``gpu`` at ``share``."""
        name = f"{key[0]}-{key[1]}"
        spec_path, status_path = self.folder / f"{name}.json", self.folder / f"{name}.status.json"
        spec = {**spec, "status": str(status_path)}
        spec_path.write_text(json.dumps(spec))
        status_path.unlink(missing_ok=True)
        env = client_environment(gpu, share, self.daemon)
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(self.command(spec_path), env=env, stdout=log, stderr=subprocess.STDOUT)
        previous = self.running.get(key)
        worker = Worker(key, gpu, share, process, status_path, env, previous.starts + 1 if previous else 1)
        self.running[key] = worker
        return worker

    def stop(self, key: tuple[int, str], timeout: float = STOP_TIMEOUT_SECONDS) -> dict:
        """Ask job ``key`` to stop (SIGTERM: a training job saves its state), wait, and return its last status."""
        worker = self.running.pop(key)
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        return worker.status()

    def restart(self, key: tuple[int, str], spec: dict, gpu: int, share: float) -> Worker:
        """Stop job ``key`` and start it again on ``gpu`` at ``share`` (a training job resumes from its saved state)."""
        starts = self.running[key].starts
        self.stop(key)
        self.restarts += 1
        worker = self.start(key, spec, gpu, share)
        worker.starts = starts + 1
        return worker

    def stop_all(self) -> dict[tuple[int, str], dict]:
        """Stop every job (all signalled first, then waited for); their last statuses."""
        for worker in self.running.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        return {key: self.stop(key) for key in list(self.running)}


@dataclass
class PlayedSegment:
    """[start, end) seconds of the window with one placed decision."""

    start: float
    end: float
    placement: Placement


@dataclass
class ConcurrentOutcome:
    """A window played on real GPUs.

    Attributes:
        segments: the placed decisions over time (wall seconds since the window start).
        finish_seconds: per stream, when its training job finished (None: not this window).
        statuses: each job's last status (throughput, steps, frames), by (stream, kind).
        restarts: job restarts for new shares.
        repairs: placement repairs, summed over the decisions.
        decisions: scheduler calls.
        estimated_accuracy: the first decision's estimate per stream.
    """

    segments: list[PlayedSegment] = field(default_factory=list)
    finish_seconds: list[float | None] = field(default_factory=list)
    statuses: dict[tuple[int, str], dict] = field(default_factory=dict)
    restarts: int = 0
    repairs: int = 0
    decisions: int = 0
    estimated_accuracy: tuple[float, ...] = ()


def _believed(problem: Problem, decision: Decision, finished: list[int], progress: dict[int, float],
              totals: dict[int, float], now: float) -> Problem:
    streams = []
    for s, (stream, choice) in enumerate(zip(problem.streams, decision.streams)):
        name = choice.retrain_config
        if name is None or name not in stream.retrain_names:
            streams.append(stream)
            continue
        k = stream.retrain_names.index(name)
        if s in finished:
            streams.append(finished_stream(stream, k))
        elif s in progress:
            streams.append(running_stream(stream, k, totals[s] * max(0.0, 1.0 - progress[s])))
        else:
            streams.append(stream)
    return replace(problem, streams=tuple(streams), now=now)


def play_concurrently(
    problem: Problem,
    scheduler: Scheduler,
    specs: Callable[[int, str, str], dict],
    workers: Workers,
    placement: Callable[[Decision], Placement] | None = None,
    clock: Callable[[], float] = time.monotonic,
    first_decision: Decision | None = None,
) -> ConcurrentOutcome:
    """Play one window of ``problem.window_seconds`` wall seconds with every job running as a process.

    Args:
        problem: the window as the scheduler sees it (``now`` = 0).
        scheduler: decides and re-plans.
        specs: the worker spec of (stream, kind, configuration): a training job's data, model and
            configuration; an inference job's model and inference configuration.
        workers: starts and stops the job processes.
        placement: places decisions on GPUs (default: on ``floor(G)`` GPUs).
        clock: wall clock, seconds.
        first_decision: the scheduler's first decision when already made.
    """
    place_on = placement or (lambda decision: place(decision, max(1, int(problem.gpus + 1e-9))))
    window = problem.window_seconds
    result = ConcurrentOutcome(finish_seconds=[None] * len(problem.streams))
    started = clock()
    decision = first_decision if first_decision is not None else scheduler.schedule(problem)
    result.decisions, result.estimated_accuracy = 1, tuple(decision.estimated_accuracy)
    current, done = problem, set()
    totals = {s: float(stream.retrain_gpu_seconds[stream.retrain_names.index(choice.retrain_config)])
              for s, (stream, choice) in enumerate(zip(problem.streams, decision.streams))
              if choice.retrain_config in stream.retrain_names}
    segment_start = 0.0

    def apply(decision: Decision) -> Placement:
        placed = place_on(decision)
        result.repairs += placed.repairs
        wanted = {(job.stream, job.kind): job for job in placed.jobs if job.share > 0}
        for key in [key for key in workers.running if key not in wanted]:
            workers.stop(key)  # paused training job (it keeps its state) or an inference job with no share
        for key, job in wanted.items():
            choice = placed.decision.streams[key[0]]
            config = choice.retrain_config if key[1] == TRAIN else choice.inference_config
            worker = workers.running.get(key)
            if worker is None:
                workers.start(key, specs(key[0], key[1], config), job.gpu, job.share)
            elif (worker.gpu, worker.share) != (job.gpu, job.share):
                workers.restart(key, specs(key[0], key[1], config), job.gpu, job.share)
        return placed

    try:
        placed = apply(decision)
        while True:
            now = clock() - started
            if now >= window:
                break
            finished = []
            for key, worker in list(workers.running.items()):
                if worker.process.poll() is None:
                    continue
                status = worker.status()
                if status.get("state") == "failed" or worker.process.returncode != 0:
                    raise EkyaError(f"job {key[1]} of stream {problem.streams[key[0]].name} failed: "
                                    f"{status.get('error', f'exit status {worker.process.returncode}')} (log: {workers.folder})")
                if key[1] == TRAIN and status.get("state") == "done":
                    finished.append(key[0])
                    result.statuses[key] = status
                    del workers.running[key]
            if finished:
                result.segments.append(PlayedSegment(segment_start, now, placed))
                segment_start = now
                for s in finished:
                    result.finish_seconds[s] = now
                    done.add(s)
                progress = {}
                for (s, kind), worker in workers.running.items():
                    status = worker.status()
                    if kind == TRAIN and status.get("total_steps"):
                        progress[s] = float(status["step"]) / float(status["total_steps"])
                current = _believed(current, decision, finished, progress, totals, now)
                decision = scheduler.reallocate(current, decision, finished)
                result.decisions += 1
                placed = apply(decision)
                continue
            time.sleep(POLL_SECONDS)
        result.segments.append(PlayedSegment(segment_start, min(clock() - started, window), placed))
    finally:
        result.statuses.update(workers.stop_all())
        result.restarts = workers.restarts
    return result


@dataclass(frozen=True)
class StreamJobs:
    """What a stream's jobs run on: the serving model, the training and serving crops, and the configurations.

    Attributes:
        model_in: checkpoint of the model serving at the window start.
        train_data: ``.npz`` (``images``, ``labels``) a training job learns from.
        serve_data: ``.npz`` an inference job serves.
        retrain: per retraining configuration, the worker's training keys (train_layers, hidden_size,
            epochs, batch_size, learning_rate).
        inference: per inference configuration, its keys (batch_size, resolution).
    """

    model_in: str
    train_data: str
    serve_data: str
    retrain: dict[str, dict]
    inference: dict[str, dict]


def write_crops(path: str | os.PathLike, images, labels) -> str:
    """Crops (uint8 N x 3 x H x W) and labels as the ``.npz`` a worker reads."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=np.asarray(images, dtype=np.uint8), labels=np.asarray(labels, dtype=np.int64))
    return str(path)


def job_specs(streams: list[StreamJobs], folder: str | os.PathLike, device: str, seed: int = 0) -> Callable[[int, str, str], dict]:
    """The worker spec of (stream, kind, configuration) for :func:`play_concurrently`; a training job keeps its
    state and writes its model under ``folder`` (``<stream>-<config>.state.pt`` and ``.pt``)."""
    folder = Path(folder)

    def spec(stream: int, kind: str, config: str) -> dict:
        jobs = streams[stream]
        if kind == TRAIN:
            return {"kind": "train", "device": device, "model_in": jobs.model_in, "data": jobs.train_data, "seed": seed + stream,
                    "state": str(folder / f"{stream}-{config}.state.pt"), "model_out": str(folder / f"{stream}-{config}.pt"),
                    **jobs.retrain[config]}
        return {"kind": "inference", "device": device, "model_in": jobs.model_in, "data": jobs.serve_data, "seconds": None,
                **jobs.inference[config]}

    return spec
