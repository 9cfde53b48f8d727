"""The packages that re-export their modules' names on first use (PEP 562) hand out every name they list."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["ekya.inference", "ekya.models", "ekya.profiling", "ekya.training"])
def test_every_listed_name_resolves_to_its_modules_object(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        defined_in = importlib.import_module(f"{package}.{module._EXPORTS[name]}")
        assert value is getattr(defined_in, name), name
    with pytest.raises(AttributeError, match="has no attribute 'nosuch'"):
        module.nosuch
