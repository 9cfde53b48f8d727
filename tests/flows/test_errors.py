"""The one error handler: unknown config-group choices, named with the valid ones from conf/<group>/."""

import pytest

from flows.errors import CONFIG_DIR, unknown_choices


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
