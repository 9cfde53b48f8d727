"""Expanding a study's sweeps into points (as Hydra's basic sweeper does), and the trace stamp."""

import json

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from ekya.errors import EkyaError
from ekya_studies.sweeps import (
    TRACE_STAMP, check_studies, expand_sweep, merge_sweep, plan_study, stamp_trace, trace_is_current,
)


def hydra_points(overrides):
    """The points Hydra's basic sweeper makes of these overrides (yaml params first, then the command line)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    (batch,) = BasicSweeper.split_arguments(parsed, None)
    return [tuple(point) for point in batch]


def test_a_sweep_expands_like_hydras_basic_sweeper():
    own = {"scheduler": ["thief", "fair", "no_retrain"], "gpus": ["1", "2"]}
    extra = {"scheduler": ["uniform"], "scheduler.retrain_config": ["high", "low"], "scheduler.inference_share": ["0.3", "0.5"]}
    ours = expand_sweep(merge_sweep(own, extra))
    hydra = hydra_points(["scheduler=thief,fair,no_retrain", "gpus=1,2", "scheduler=uniform",
                          "scheduler.retrain_config=high,low", "scheduler.inference_share=0.3,0.5"])
    assert ours == hydra
    assert ours[0] == ("scheduler=uniform", "gpus=1", "scheduler.retrain_config=high", "scheduler.inference_share=0.3")
    assert len(ours) == 2 * 2 * 2


def test_a_study_runs_its_own_sweep_then_the_extra_ones_each_point_once():
    own = {"scheduler": ["thief", "uniform"], "gpus": ["1", "2"]}
    plan = plan_study("gpus_sweep", own, [{"scheduler": ["uniform"]}, {"scheduler": ["fair"], "gpus": ["4"]}])
    assert [str(p) for p in plan.points] == [
        "scheduler=thief gpus=1", "scheduler=thief gpus=2", "scheduler=uniform gpus=1", "scheduler=uniform gpus=2",
        "scheduler=fair gpus=4",
    ]
    assert {p.study for p in plan.points} == {"gpus_sweep"}


def test_changes_replace_the_own_sweep_and_the_extra_sweeps_inherit_them():
    own = {"scheduler": ["thief"], "executor.window_seconds": ["50", "100"]}
    plan = plan_study("window_length", own, [{"scheduler": ["uniform"]}], changes={"executor.window_seconds": ["8", "17"]})
    assert [str(p) for p in plan.points] == [
        "scheduler=thief executor.window_seconds=8", "scheduler=thief executor.window_seconds=17",
        "scheduler=uniform executor.window_seconds=8", "scheduler=uniform executor.window_seconds=17",
    ]


def test_a_parameter_without_values_is_refused():
    with pytest.raises(EkyaError, match="'gpus' has no values"):
        merge_sweep({"gpus": []}, {})


def test_every_study_is_run_or_skipped_by_name():
    check_studies(["a", "b", "c"], ["a", "b"], ["c"])
    with pytest.raises(EkyaError, match=r"neither run nor skipped: c; list each under `studies`"):
        check_studies(["a", "b", "c"], ["a", "b"], [])
    with pytest.raises(EkyaError, match=r"unknown study 'd'; valid \(conf/experiment/\*.yaml\): a, b, c"):
        check_studies(["a", "b", "c"], ["a", "b", "d"], ["c"])
    with pytest.raises(EkyaError, match="both run and skipped: a"):
        check_studies(["a", "b"], ["a", "b"], ["a"])


def test_a_trace_is_current_only_with_its_files_and_the_same_settings(tmp_path):
    settings = {"dataset": {"num_streams": 10}, "seed": 0}
    assert not trace_is_current(tmp_path, settings)
    for name in ("trace.yaml", "retrain.csv", "inference.csv"):
        (tmp_path / name).write_text("x")
    assert not trace_is_current(tmp_path, settings)  # no stamp: profiled by something else
    stamp_trace(tmp_path, settings)
    assert json.loads((tmp_path / TRACE_STAMP).read_text())["settings"] == settings
    assert trace_is_current(tmp_path, {"seed": 0, "dataset": {"num_streams": 10}})
    assert not trace_is_current(tmp_path, {"dataset": {"num_streams": 12}, "seed": 0})
    (tmp_path / "retrain.csv").unlink()
    assert not trace_is_current(tmp_path, settings)
    (tmp_path / "retrain.csv").write_text("x")
    (tmp_path / TRACE_STAMP).write_text("not json")
    assert not trace_is_current(tmp_path, settings)
