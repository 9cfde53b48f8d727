"""Placing pooled shares on physical GPUs: property tests on random decisions, the repair, and the simulator's rule."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ekya.errors import EkyaError
from ekya.execution.placement import GPU_CAPACITY, INFERENCE, TRAIN, jobs_of, place, placement_rule
from ekya.scheduling import build_scheduler
from ekya.scheduling.problem import Decision, StreamDecision
from ekya.tracking.metrics import window_metrics
from tests.conftest import outcomes_of

TOL = 1e-7


def decision_of(pairs):
    """A decision from (train_share, inference_share) per stream; a train share > 0 has a configuration."""
    streams = tuple(StreamDecision("c" if train > 0 else None, train, "i", inference) for train, inference in pairs)
    return Decision(streams, tuple(0.0 for _ in pairs))


def check_invariants(decision, placement, gpus):
    for gpu in range(gpus):
        assert placement.load(gpu) <= GPU_CAPACITY + TOL
    jobs = jobs_of(decision)
    keys = [(job.stream, job.kind) for job in placement.jobs]
    assert len(keys) == len(set(keys)) == len(jobs)  # every job exactly once, on one GPU
    assert {(s, k) for s, k, _ in jobs} == set(keys)
    assert all(0 <= job.gpu < gpus and 0 <= job.share <= job.requested + TOL for job in placement.jobs)
    for job in placement.jobs:
        placed = placement.decision.streams[job.stream]
        assert (placed.inference_share if job.kind == INFERENCE else placed.train_share) == pytest.approx(job.share)
    assert placement.repairs == sum(job.repaired for job in placement.jobs)


shares = st.integers(min_value=0, max_value=15).map(lambda k: k / 10)  # on the Δ = 0.1 grid, some above one GPU


@settings(max_examples=300, deadline=None)
@given(gpus=st.integers(1, 4), pairs=st.lists(st.tuples(shares, shares), min_size=1, max_size=6))
def test_random_decisions_never_overload_a_gpu_and_place_every_job_once(gpus, pairs):
    decision = decision_of(pairs)
    check_invariants(decision, place(decision, gpus), gpus)


@st.composite
def placeable(draw):
    """A decision built from a real packing: each GPU cut into pieces on the 0.05 grid, pieces shuffled into jobs."""
    gpus = draw(st.integers(1, 4))
    pieces = []
    for _ in range(gpus):
        cuts = sorted(draw(st.lists(st.integers(1, 19), max_size=3, unique=True)))
        bounds = [0, *cuts, 20]
        used = draw(st.integers(1, len(bounds) - 1))  # a GPU may be left partly idle
        pieces += [(b - a) / 20 for a, b in zip(bounds[:used], bounds[1:used + 1])]
    order = draw(st.permutations(range(len(pieces))))
    pieces = [pieces[k] for k in order]
    if len(pieces) % 2:
        pieces.append(0.0)  # the last stream trains with no share
    pairs = [(pieces[k], pieces[k + 1]) for k in range(0, len(pieces), 2)]
    return gpus, pairs


@settings(max_examples=300, deadline=None)
@given(placeable())
def test_shares_are_kept_when_the_decision_can_be_placed(case):
    gpus, pairs = case
    decision = decision_of(pairs)
    placement = place(decision, gpus)
    check_invariants(decision, placement, gpus)
    assert placement.repairs == 0
    for before, after in zip(decision.streams, placement.decision.streams):
        assert after.train_share == pytest.approx(before.train_share)
        assert after.inference_share == pytest.approx(before.inference_share)


def test_first_fit_decreasing_misses_a_packing_the_search_finds():
    # FFD on 2 GPUs: 0.5, 0.4 -> GPU 0 (0.9); 0.3, 0.3 -> GPU 1 (0.6); 0.3, 0.2 are left. Exact: (0.5, 0.3, 0.2), (0.4, 0.3, 0.3).
    decision = decision_of([(0.5, 0.4), (0.3, 0.3), (0.3, 0.2)])
    placement = place(decision, 2)
    assert placement.repairs == 0
    assert sorted(round(placement.load(g), 6) for g in range(2)) == [1.0, 1.0]


def test_an_unplaceable_decision_is_repaired_and_counted():
    # Three jobs of 0.6 on 2 GPUs (1.8 of 2.0 pooled): one must shrink to 0.4; a 1.5 inference job is cut to one GPU.
    placement = place(decision_of([(0.6, 0.6), (0.0, 0.6)]), 2)
    assert placement.repairs == 1
    assert sorted(round(job.share, 6) for job in placement.jobs) == [0.4, 0.6, 0.6]
    cut = place(decision_of([(0.0, 1.5)]), 2)
    assert cut.repairs == 1 and cut.decision.streams[0].inference_share == pytest.approx(1.0)
    assert cut.gpu_of(0, TRAIN) is None and cut.gpu_of(0, INFERENCE) is not None


def test_placement_rule_names():
    assert placement_rule("pooled", 2.5) is None
    assert placement_rule("per_gpu", 3.0).gpus == 3
    with pytest.raises(EkyaError, match="whole number of GPUs, got gpus=2.5"):
        placement_rule("per_gpu", 2.5)
    with pytest.raises(EkyaError, match="valid: pooled, per_gpu"):
        placement_rule("spread", 1.0)


def test_simulator_places_each_decision_and_counts_repairs(paper_example_trace, simulated_run):
    pooled = simulated_run(paper_example_trace)
    placed = simulated_run(paper_example_trace)
    placed.placement = placement_rule("per_gpu", placed.settings.gpus)
    scheduler = build_scheduler("thief")
    for a, b in zip(outcomes_of(pooled, scheduler), outcomes_of(placed, scheduler)):
        assert b.placed and not a.placed
        for segment in b.segments:
            loads = np.zeros(3)
            for part in segment.streams:
                loads[part.inference_gpu] += part.inference_share
                if part.train_gpu is not None:
                    loads[part.train_gpu] += part.train_share
            assert np.all(loads <= 1.0 + TOL)
        assert window_metrics(b, placed.stream_names)["placement/repairs"] == b.placement_repairs
        assert "placement/repairs" not in window_metrics(a, pooled.stream_names)
        if b.placement_repairs == 0:
            assert b.accuracy == pytest.approx(a.accuracy)
