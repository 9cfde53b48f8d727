"""Schedulers on the paper's worked example, invariants on random instances, the registry."""


import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.execution.timeline import KnownOutcomes, play_window
from ekya.scheduling import SCHEDULERS, build_scheduler
from ekya.scheduling.optimal import InstanceTooLarge
from ekya.scheduling.uniform import resolve_retrain_config
from tests.conftest import outcomes_of
from tests.scheduling.helpers import random_problem

@pytest.fixture
def paper_example(paper_example_trace, simulated_run):
    """Play the paper's example under the scheduler ``name`` with ``params`` (Uniform's aliases resolved)."""

    def play(name, **params):
        run = simulated_run(paper_example_trace)
        if "retrain_config" in params:
            params["retrain_config"] = run.resolve_retrain_config(params["retrain_config"])
        return outcomes_of(run, build_scheduler(name, **params))

    return play


def mean_accuracy(outcomes):
    return float(np.mean([o.mean_accuracy for o in outcomes]))


def test_uniform_cfg1_half_split_matches_the_paper(paper_example):
    outcomes = paper_example("uniform", retrain_config="high", inference_share=0.5)
    assert 100 * mean_accuracy(outcomes) == pytest.approx(56.09, abs=0.01)
    first = outcomes[0].segments[0]
    # Figure 4c: A dips 65 -> 48.75 and B 50 -> 37.5 while both retrain.
    assert [100 * s.accuracy for s in first.streams] == pytest.approx([48.75, 37.5])


def test_optimal_finds_the_best_schedule_of_the_example(paper_example):
    outcomes = paper_example("optimal")
    assert 100 * mean_accuracy(outcomes) == pytest.approx(76.09, abs=0.01)
    # Window 1: B then A with 1 GPU; window 2: A then B; both on Cfg2.
    assert outcomes[0].retrained == ["Cfg2", "Cfg2"]
    assert outcomes[0].finish_seconds == pytest.approx([115.0, 50.0])
    assert outcomes[1].retrained == ["Cfg2", "Cfg2"]
    assert outcomes[1].finish_seconds == pytest.approx([40.0, 110.0])


@pytest.mark.parametrize("variant", ["paper", "improved"])
def test_thief_reaches_at_least_the_papers_schedule(paper_example, variant):
    assert 100 * mean_accuracy(paper_example("thief", variant=variant)) >= 73.0


@pytest.mark.parametrize("variant", ["paper", "improved"])
def test_thief_replans_when_a_job_finishes(paper_example, variant):
    outcomes = paper_example("thief", variant=variant)
    assert all(o.decisions >= 2 for o in outcomes)
    assert outcomes[0].schedule_seconds_total >= outcomes[0].schedule_seconds


def test_no_retrain_keeps_the_start_accuracies(paper_example):
    assert 100 * mean_accuracy(paper_example("no_retrain")) == pytest.approx(57.5)


@pytest.mark.parametrize("variant", ["paper", "improved"])
def test_baselines_and_ablations_rank_as_in_the_paper(paper_example, variant):
    uniform = mean_accuracy(paper_example("uniform", retrain_config="high"))
    fixed_res = mean_accuracy(paper_example("fixed_res"))
    fixed_config = mean_accuracy(paper_example("fixed_config", retrain_config="low", variant=variant))
    thief = mean_accuracy(paper_example("thief", variant=variant))
    assert uniform < fixed_res < thief
    assert uniform < fixed_config <= thief + 1e-9


@pytest.mark.parametrize(
    "name, variant",
    [("thief", "improved"), ("thief", "paper"), ("fair", None), ("uniform", None), ("no_retrain", None), ("fixed_res", None),
     ("fixed_config", "improved"), ("fixed_config", "paper"), ("optimal", None)],
)
def test_every_scheduler_respects_the_box(name, variant):
    rng = np.random.default_rng(7)
    params = {"retrain_config": "c0"} if name in ("uniform", "fixed_config") else {}
    if variant is not None:
        params["variant"] = variant
    scheduler = build_scheduler(name, **params)
    for _ in range(15):
        problem = random_problem(rng, streams=2, configs=2, gpus=float(rng.choice([1.0, 2.0])), delta=0.2)
        decision = scheduler.schedule(problem)
        assert decision.total_share <= problem.gpus + 1e-9
        for choice in decision.streams:
            assert choice.train_share >= 0 and choice.inference_share >= 0
            if variant == "paper" or name == "optimal":  # on the Δ grid (the improved variant is not)
                for share in (choice.train_share, choice.inference_share):
                    assert share / problem.delta == pytest.approx(round(share / problem.delta), abs=1e-9)


def instant_accuracy(problem, decision):
    out = []
    for stream, choice in zip(problem.streams, decision.streams):
        k = stream.inference_names.index(choice.inference_config)
        out.append(stream.serving_accuracy * stream.inference_factor[k] * min(1.0, choice.inference_share / stream.inference_demand[k]))
    return out


@pytest.mark.parametrize("name, params", [("thief", {}), ("thief", {"variant": "paper"}), ("optimal", {})])
def test_inference_meets_min_accuracy_when_feasible(name, params):
    rng = np.random.default_rng(3)
    scheduler = build_scheduler(name, **params)
    for _ in range(20):
        problem = random_problem(rng, streams=2, configs=2, gpus=2.0, delta=0.2, min_accuracy=0.45)
        decision = scheduler.schedule(problem)
        for stream, accuracy in zip(problem.streams, instant_accuracy(problem, decision)):
            if stream.serving_accuracy >= problem.min_accuracy:  # attainable with demand <= 0.8 GPU each
                assert accuracy >= problem.min_accuracy - 1e-9


def known_outcomes(problem):
    return [
        KnownOutcomes(
            s.serving_accuracy,
            dict(zip(s.retrain_names, s.retrain_gpu_seconds)),
            dict(zip(s.retrain_names, s.retrain_accuracy)),
            dict(zip(s.inference_names, s.inference_demand)),
            dict(zip(s.inference_names, s.inference_factor)),
        )
        for s in problem.streams
    ]


def test_no_scheduler_on_the_grid_beats_the_optimum():
    # The optimum is exact over allocations on the Δ grid; here G/N is on the grid too, so
    # no_retrain's equal split is one of its candidates. (The improved thief leaves the Δ grid:
    # tests/scheduling/test_thief.py compares it with the optimum over its own grid.)
    rng = np.random.default_rng(11)
    names = {"thief": {"variant": "paper"}, "fixed_config": {"retrain_config": "c1", "variant": "paper"}, "no_retrain": {}}
    schedulers = {name: build_scheduler(name, **params) for name, params in names.items()}
    optimal = build_scheduler("optimal")
    for _ in range(12):
        problem = random_problem(rng, streams=2, configs=2, gpus=1.0, delta=0.25)
        best = play_window(problem, optimal, known_outcomes(problem)).mean_accuracy
        assert optimal.schedule(problem).estimated_mean_accuracy == pytest.approx(best, abs=1e-9)
        for scheduler in schedulers.values():
            assert play_window(problem, scheduler, known_outcomes(problem)).mean_accuracy <= best + 1e-9


def test_optimal_refuses_instances_too_large():
    problem = random_problem(np.random.default_rng(0), streams=6, configs=6, gpus=4.0, delta=0.1)
    with pytest.raises(InstanceTooLarge, match="too large"):
        build_scheduler("optimal").schedule(problem)


def test_registry_lists_valid_names_and_parameters():
    assert set(SCHEDULERS) == {"thief", "fair", "uniform", "no_retrain", "fixed_res", "fixed_config", "optimal"}
    with pytest.raises(EkyaError, match="unknown scheduler 'magic'; valid: fair, fixed_config"):
        build_scheduler("magic")
    with pytest.raises(EkyaError, match="no parameter speed; accepted: passes, extra_starts, allowed_configs, variant"):
        build_scheduler("thief", speed=3)
    with pytest.raises(EkyaError, match=r"^scheduler 'thief': unknown variant 'magic'; valid: improved, paper$"):
        build_scheduler("thief", variant="magic")
    with pytest.raises(EkyaError, match="missing a required argument: 'retrain_config'"):
        build_scheduler("uniform")
    with pytest.raises(EkyaError, match="inference_share must be in"):
        build_scheduler("uniform", retrain_config="c0", inference_share=1.5)


def test_uniform_aliases_come_from_the_pareto_frontier():
    names, cost, accuracy = ["a", "b", "c", "d"], [100, 40, 60, 90], [0.9, 0.7, 0.68, 0.8]
    assert resolve_retrain_config("high", names, cost, accuracy, base_accuracy=0.5) == "a"
    # Frontier: b (40, .70), d (90, .80), a; c is dominated by b. Gain per GPU-second: b .005, d .0033.
    assert resolve_retrain_config("low", names, cost, accuracy, base_accuracy=0.5) == "b"
    assert resolve_retrain_config("c", names, cost, accuracy, base_accuracy=0.5) == "c"
    with pytest.raises(ValueError, match="unknown retraining configuration 'z'; valid: high, low, a, b, c, d"):
        resolve_retrain_config("z", names, cost, accuracy, base_accuracy=0.5)
