"""The thief (ekya/scheduling/thief.py): the improved variant against every baseline and the exact optimum, on random problems."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ekya.scheduling.thief as thief_module
from ekya.scheduling import Problem, build_scheduler
from ekya.scheduling.base import estimated_objective
from ekya.scheduling.thief import QUANTA_PER_DEMAND, ThiefScheduler, improved_quantum
from ekya.scheduling.uniform import UNIFORM_INFERENCE_SHARES
from tests.scheduling.helpers import random_problem, stream

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, streams=st.integers(1, 6), gpus=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]), min_accuracy=st.sampled_from([0.0, 0.3])):
    """Random windows: tiny (0.01-0.05 GPU) or ordinary (0.1-0.5) inference demands, streams that may
    still retrain, have a job part-way or are done, an overhead before training, sometimes mid-window."""
    count = draw(streams)
    tiny = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    result = []
    for s in range(count):
        serving = rng.uniform(0.4, 0.8)
        kind = draw(st.sampled_from(["pending", "pending", "running", "done"]))
        configs = {"pending": int(rng.integers(1, 5)), "running": 1, "done": 0}[kind]
        cost = rng.uniform(20, 400, configs)
        accuracy = np.clip(serving + rng.uniform(-0.05, 0.35, configs), 0, 1)
        base = rng.uniform(0.01, 0.05) if tiny else rng.uniform(0.1, 0.5)
        result.append(stream(f"s{s}", serving, cost, accuracy, demand=tuple(base * np.array([1.0, 1.75, 2.5, 4.0])),
                             factor=(0.8, 0.9, 0.95, 1.0), running=kind == "running"))
    window = 200.0
    now = draw(st.sampled_from([0.0, 0.0, 60.0]))
    return Problem(tuple(result), gpus=draw(gpus), delta=0.1, window_seconds=window, now=now,
                   training_start=draw(st.sampled_from([0.0, 10.0])), min_accuracy=draw(min_accuracy))


def baseline_objectives(problem: Problem) -> dict[str, float]:
    """Each baseline's estimate of its own decision (aMIN penalties included), by label."""
    names = dict.fromkeys(name for s in problem.streams for name in s.retrain_names)
    schedulers = {"no_retrain": build_scheduler("no_retrain"), "fair": build_scheduler("fair")}
    for share in UNIFORM_INFERENCE_SHARES:
        schedulers[f"fixed_res {share}"] = build_scheduler("fixed_res", inference_share=share)
        for name in names or ["c0"]:
            schedulers[f"uniform {name} {share}"] = build_scheduler("uniform", retrain_config=name, inference_share=share)
    return {label: estimated_objective(problem, scheduler.schedule(problem)) for label, scheduler in schedulers.items()}


def check_never_below_a_baseline(problem: Problem) -> None:
    decision = ThiefScheduler().schedule(problem)
    assert decision.total_share <= problem.gpus + 1e-9
    assert all(d.inference_share >= 0 and d.train_share >= 0 for d in decision.streams)
    got = estimated_objective(problem, decision)
    for label, value in baseline_objectives(problem).items():
        assert got >= value - 1e-9, f"improved thief {got:.6f} below {label} {value:.6f}"
    if problem.min_accuracy == 0:
        assert estimated_objective(problem, decision) == pytest.approx(decision.estimated_mean_accuracy, abs=1e-12)


@PROPERTY
@given(problems())
def test_improved_thief_is_never_below_a_baseline(problem):
    check_never_below_a_baseline(problem)


@PROPERTY
@given(problems(streams=st.integers(2, 10), gpus=st.sampled_from([0.25, 0.5]), min_accuracy=st.just(0.0)))
def test_improved_thief_is_never_below_a_baseline_below_one_gpu(problem):
    check_never_below_a_baseline(problem)


@st.composite
def small_problems(draw):
    """Two streams that may retrain (1-2 configurations), 1 GPU, Δ = 0.05, demands 0.2-0.4 GPU: every allocation
    the improved thief can reach (its quantum is Δ here; every baseline's shares are multiples of Δ) is on the
    optimum's grid."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    result = []
    for s in range(2):
        serving = rng.uniform(0.4, 0.8)
        configs = draw(st.integers(1, 2))
        demand = np.sort(rng.uniform(0.2, 0.4, draw(st.integers(1, 2))))
        result.append(stream(f"s{s}", serving, rng.uniform(20, 300, configs), np.clip(serving + rng.uniform(-0.05, 0.3, configs), 0, 1),
                             demand=tuple(demand), factor=(0.85, 1.0)[-len(demand):]))
    return Problem(tuple(result), gpus=1.0, delta=0.05, window_seconds=200.0, training_start=draw(st.sampled_from([0.0, 10.0])))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_improved_thief_is_at_most_the_optimum_over_its_grid(problem):
    assert improved_quantum(problem) == pytest.approx(problem.delta)
    decision = ThiefScheduler().schedule(problem)
    for choice in decision.streams:
        for share in (choice.inference_share, choice.train_share):
            assert share / problem.delta == pytest.approx(round(share / problem.delta), abs=1e-6)
    best = build_scheduler("optimal").schedule(problem).estimated_mean_accuracy
    assert decision.estimated_mean_accuracy <= best + 1e-9
    assert decision.estimated_mean_accuracy >= max(baseline_objectives(problem).values()) - 1e-9


def test_improved_thief_beats_the_paper_variant_where_demands_are_tiny():
    # 10 streams on 1 GPU whose inference needs 0.01-0.05 GPU: the paper's quanta of Δ = 0.1 are far too coarse.
    rng = np.random.default_rng(5)
    for gpus in (0.25, 0.5, 1.0):
        problem = random_problem(rng, streams=10, configs=4, gpus=gpus, delta=0.1, min_accuracy=0.0)
        problem = Problem(tuple(_tiny_demands(s, rng) for s in problem.streams), gpus=gpus, delta=0.1, window_seconds=200.0)
        improved = ThiefScheduler().schedule(problem).estimated_mean_accuracy
        paper = ThiefScheduler(variant="paper").schedule(problem).estimated_mean_accuracy
        no_retrain = build_scheduler("no_retrain").schedule(problem).estimated_mean_accuracy
        assert improved >= max(paper, no_retrain) - 1e-9
        if gpus < 1:  # Δ-quanta cannot even give every stream one quantum of inference
            assert improved > paper + 0.05


def _tiny_demands(s, rng):
    from dataclasses import replace

    return replace(s, inference_demand=s.inference_demand * rng.uniform(0.02, 0.06))


def test_the_quantum_fits_the_smallest_demand_and_divides_delta():
    rng = np.random.default_rng(2)
    problem = random_problem(rng, streams=10, configs=3, gpus=1.0, delta=0.1)
    problem = Problem(tuple(_tiny_demands(s, rng) for s in problem.streams), gpus=1.0, delta=0.1, window_seconds=200.0)
    quantum = improved_quantum(problem)
    smallest = min(float(s.inference_demand.min()) for s in problem.streams)
    assert quantum <= smallest / QUANTA_PER_DEMAND + 1e-12
    parts = problem.delta / quantum
    assert parts == pytest.approx(round(parts)) and parts >= 1
    # Bounded below: a demand of 1e-6 GPU does not make the quantum (and the decision time) unbounded.
    problem = random_problem(rng, streams=4, configs=2, gpus=1.0, delta=0.1)
    problem = Problem(tuple(_scaled(s, 1e-5) for s in problem.streams), gpus=1.0, delta=0.1, window_seconds=200.0)
    assert improved_quantum(problem) >= 1.0 / 8 / thief_module.MAX_QUANTA_PER_JOB - 1e-12
    assert not math.isnan(ThiefScheduler().schedule(problem).estimated_mean_accuracy)


def _scaled(s, factor):
    from dataclasses import replace

    return replace(s, inference_demand=s.inference_demand * factor)


def test_a_worse_stealing_result_falls_back_to_the_best_start(monkeypatch):
    # The result is checked again: were stealing to end below its start, the best start is returned.
    rng = np.random.default_rng(4)
    problem = random_problem(rng, streams=5, configs=3, gpus=0.5, delta=0.1, min_accuracy=0.0)
    monkeypatch.setattr(thief_module, "_steal_shares", lambda problem, table, job_stream, shares, quantum, passes: [0.0] * len(shares))
    decision = ThiefScheduler().schedule(problem)
    assert decision.estimated_mean_accuracy >= max(baseline_objectives(problem).values()) - 1e-9
    assert decision.total_share > 0


def test_the_paper_variant_is_algorithm_1_on_the_delta_grid():
    rng = np.random.default_rng(8)
    problem = random_problem(rng, streams=4, configs=3, gpus=2.0, delta=0.1)
    decision = ThiefScheduler(variant="paper").schedule(problem)
    for choice in decision.streams:
        for share in (choice.inference_share, choice.train_share):
            assert share / problem.delta == pytest.approx(round(share / problem.delta), abs=1e-9)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown variant 'x'; valid: improved, paper"):
        ThiefScheduler(variant="x")
