"""The import contracts of pyproject.toml's [tool.importlinter] hold: layers point one way.

Each contract is checked on its own (``lint-imports --contract ID``), so a broken one names
itself and shows import-linter's report of the offending imports.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ekya

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _importlinter_config() -> dict:
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["importlinter"]


CONTRACTS = {contract["id"]: contract for contract in _importlinter_config()["contracts"]}

#: The subpackages and modules directly under ekya (ekya.data, ekya.errors, ...).
EKYA_MODULES = {f"ekya.{module.name}" for module in pkgutil.iter_modules(ekya.__path__)}


@pytest.mark.parametrize("contract_id", sorted(CONTRACTS))
def test_import_contract_is_kept(contract_id):
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} not found: install the dev extras (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract_id],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"import contract {contract_id!r} is broken:\n{result.stdout}{result.stderr}", pytrace=False)


def test_scheduling_contract_forbids_every_other_package():
    """ekya.scheduling may import only itself and ekya.errors: every other module of ekya is listed."""
    forbidden = set(CONTRACTS["scheduling"]["forbidden_modules"])
    assert forbidden | {"ekya.scheduling", "ekya.errors"} == EKYA_MODULES | {"flows"}


def test_mlflow_contract_covers_everything_but_tracking():
    """Only ekya.tracking may import MLflow: every other module of ekya is a source of the contract."""
    sources = set(CONTRACTS["mlflow-in-tracking"]["source_modules"])
    assert sources | {"ekya.tracking"} == EKYA_MODULES and "ekya.tracking" not in sources
