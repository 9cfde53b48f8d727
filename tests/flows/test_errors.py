"""The one error handler: unknown config-group choices, named with the valid ones from conf/<group>/, and what
Hydra cannot compose (an unknown key, named with the valid ones), on one line."""

import pytest

from flows.errors import CONFIG_DIR, composition_errors, unknown_choices


def valid(group):
    return ", ".join(sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml")))


@pytest.mark.parametrize("group", ["dataset", "executor", "model", "profiler", "labeler", "scheduler", "experiment", "retrain_space"])
def test_every_group_names_its_valid_choices(group):
    assert unknown_choices([f"{group}=nosuch"]) == [f"unknown {group} 'nosuch'; valid: {valid(group)}"]


def test_sweeps_appends_and_good_choices():
    assert unknown_choices(["scheduler=thief,nosuch", "+experiment=paper_example", "model=resnet18"]) == [
        f"unknown scheduler 'nosuch'; valid: {valid('scheduler')}"]


@pytest.mark.parametrize("override", ["gpus=0", "model.name=vgg99", "experiment=null", "~experiment", "hydra/launcher=nosuch",
                                      "executor=glob(*)", "scheduler=[", "hydra.sweep.dir=x"])
def test_what_is_not_a_group_choice_is_left_alone(override):
    assert unknown_choices([override]) == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["scheduler.nosuch=1"], "unknown key 'scheduler.nosuch'; valid: extra_starts, name, passes, variant"),
        (["experiment=paper_example", "executor.nope=3"],
         "unknown key 'executor.nope'; valid: name, placement, ray_address, scaling, task_runner, trace, window_seconds, workers"),
        (["tracking.foo.bar=1"], "unknown key 'tracking.foo'; valid: experiment, uri"),
        (["gpus=1,0"], "Ambiguous value for argument 'gpus=1,0' 1. To use it as a list"),  # a sweep without -m
        (["scheduler=["], "no viable alternative at input '['"),
    ],
)
def test_what_hydra_cannot_compose_is_one_line(overrides, message):
    (line,) = composition_errors(overrides, "config")
    assert line.startswith(message), line


def test_good_overrides_and_a_multiruns_swept_ones_compose():
    assert composition_errors(["gpus=2", "+scheduler.extra=1", "hydra.run.dir=x"], "config") == []
    # a multirun's points are checked when it starts (CheckSweep): only what is not swept is composed here
    assert composition_errors(["gpus=1,0", "scheduler.nosuch=1,2"], "config", multirun=True) == []
    assert composition_errors(["gpus=1,2", "scheduler.nosuch=1"], "config", multirun=True) == [
        "unknown key 'scheduler.nosuch'; valid: extra_starts, name, passes, variant"]
