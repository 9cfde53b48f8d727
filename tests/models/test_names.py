"""The architecture names config checks read without torch are the ones the factories build."""

from ekya.models import factory, golden
from ekya.models.names import GOLDEN_MODEL_NAMES, MODEL_NAMES


def test_the_name_lists_are_what_the_factories_build():
    assert tuple(factory._BACKBONES) == MODEL_NAMES == factory.MODEL_NAMES
    assert tuple(golden._ARCHITECTURES) == GOLDEN_MODEL_NAMES == golden.GOLDEN_MODEL_NAMES
