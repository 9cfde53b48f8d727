"""What every executor's run provides, and playing its windows without Prefect.

Both :class:`~ekya.execution.simulated.SimulatedRun` and :class:`~ekya.execution.local.LocalRun`
follow :class:`ExecutorRun`; ``flows.window_loop`` drives the same steps as Prefect tasks.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from ekya.execution.simulated import WindowSettings
from ekya.execution.timeline import StreamProfile, WindowOutcome, play_window
from ekya.scheduling.base import Scheduler
from ekya.scheduling.problem import Problem, StreamProblem


class ExecutorRun(Protocol):
    """A run over a dataset's streams and windows on one executor."""

    stream_names: list[str]
    window_indices: list[int]
    settings: WindowSettings

    def prepare(self) -> None:
        """One-off work before the first window (e.g. the base model)."""

    def profile(self, window: int, stream: str) -> StreamProfile:
        """What the scheduler sees of a stream at the window start, what really happens, and the overheads."""

    def problem(self, believed: list[StreamProblem], overhead_gpu_seconds: float) -> Problem:
        """The window's problem from the streams' estimates and the window's overheads."""

    def train_chosen(self, window: int, stream: str, config: str | None) -> None:
        """Do the chosen retraining ahead of the timeline (parallel across streams)."""

    def commit(self, window: int, retrained: list[str | None]) -> None:
        """Retrained models serve from the next window on."""

    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` resolved."""


def total_overheads(profiles: Sequence[StreamProfile]) -> dict[str, float]:
    """GPU-seconds of overheads of all streams, by kind."""
    totals: dict[str, float] = {}
    for profile in profiles:
        for kind, seconds in profile.overhead_gpu_seconds.items():
            totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def play_run_window(run: ExecutorRun, window: int, scheduler: Scheduler) -> tuple[WindowOutcome, dict[str, float]]:
    """Profile, schedule and play one window, then let its retrained models serve; returns the overheads too."""
    profiles = [run.profile(window, stream) for stream in run.stream_names]
    overheads = total_overheads(profiles)
    problem = run.problem([p.believed for p in profiles], sum(overheads.values()))
    outcome = play_window(problem, scheduler, [p.outcomes for p in profiles])
    run.commit(window, outcome.retrained)
    return outcome, overheads


def play_run(run: ExecutorRun, scheduler: Scheduler) -> list[WindowOutcome]:
    """Every window of ``run`` in order, without Prefect (benchmarks, tests, notebooks)."""
    run.prepare()
    return [play_run_window(run, window, scheduler)[0] for window in run.window_indices]
