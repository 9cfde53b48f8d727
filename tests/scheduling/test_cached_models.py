"""Cached models in the problem: every scheduler values a stream from its best start model, in one decision."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ekya.scheduling import Problem, build_scheduler
from ekya.scheduling.base import estimated_objective
from tests.scheduling.helpers import random_problem, stream


def with_cache(s, *accuracies):
    return replace(s, cached_names=tuple(f"m{k}" for k in range(len(accuracies))), cached_accuracy=np.array(accuracies))


@pytest.mark.parametrize("name", ["thief", "no_retrain", "optimal"])  # (Fair retrains its most accurate configuration whatever)
def test_a_cached_model_better_than_every_retraining_is_chosen_and_not_retrained_past(name):
    cached = with_cache(stream("a", 0.4, (20.0, 60.0), (0.7, 0.8)), 0.6, 0.9)
    problem = Problem((cached, stream("b", 0.4, (20.0,), (0.8,))), gpus=2.0, delta=0.1, window_seconds=100.0)
    decision = build_scheduler(name).schedule(problem)
    assert decision.streams[0].serving_model == "m1"
    assert decision.streams[0].retrain_config is None  # nothing it can retrain beats the cached model
    assert decision.estimated_accuracy[0] == pytest.approx(0.9)  # it serves from the window's start
    assert decision.streams[1].serving_model is None


def test_a_cached_model_serves_while_a_better_retraining_runs():
    problem = Problem((with_cache(stream("a", 0.4, (20.0,), (0.95,), demand=(0.2,)), 0.7),), gpus=1.0, delta=0.1, window_seconds=100.0)
    decision = build_scheduler("thief").schedule(problem)
    choice = decision.streams[0]
    assert choice.serving_model == "m0" and choice.retrain_config == "c0"
    assert choice.inference_share >= 0.2 - 1e-9  # every frame processed, by the cached model until the job is done
    done = 20.0 / choice.train_share
    assert decision.estimated_accuracy[0] == pytest.approx((0.7 * done + 0.95 * (100 - done)) / 100)


def test_a_cached_model_worse_than_the_serving_one_is_not_chosen():
    problem = Problem((with_cache(stream("a", 0.8), 0.6),), gpus=1.0, delta=0.1, window_seconds=100.0)
    assert build_scheduler("thief").schedule(problem).streams[0].serving_model is None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), streams=st.integers(1, 5), gpus=st.sampled_from([0.5, 1.0, 2.0]))
def test_the_thief_is_never_worse_with_cached_models_on_its_own_estimates(seed, streams, gpus):
    rng = np.random.default_rng(seed)
    plain = random_problem(rng, streams, 3, gpus)
    cached = replace(plain, streams=tuple(with_cache(s, *rng.uniform(0.3, 0.9, 2)) for s in plain.streams))
    for name in ("thief", "fair", "uniform", "no_retrain"):
        params = {"retrain_config": "c0"} if name == "uniform" else {}
        scheduler = build_scheduler(name, **params)
        with_option = estimated_objective(cached, scheduler.schedule(cached))
        without = estimated_objective(plain, scheduler.schedule(plain))
        assert with_option >= without - 1e-9, name
