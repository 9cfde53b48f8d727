"""prefect.toml: every key is one of Prefect's settings, and a run from the repository root gets them."""

import os
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _leaves(table: dict, prefix: tuple[str, ...] = ()):
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def test_every_key_is_a_prefect_setting():
    """Prefect ignores unknown keys silently, so a misspelt one would simply not apply."""
    from prefect.settings import Settings

    for path, _ in _leaves(tomllib.loads((ROOT / "prefect.toml").read_text())):
        model = Settings
        for name in path[:-1]:
            assert name in model.model_fields, ".".join(path)
            model = model.model_fields[name].annotation
        assert path[-1] in model.model_fields, ".".join(path)


def test_a_run_from_the_repository_root_gets_them(monkeypatch):
    from prefect.settings import Settings

    for name in list(os.environ):
        if name.startswith("PREFECT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    settings = Settings()
    assert settings.home == Path(".prefect")
    assert settings.server.analytics_enabled is False
    assert settings.server.ephemeral.startup_timeout_seconds == 180
    assert (ROOT / settings.home).parent == ROOT  # Prefect creates its home, but not the folder above it
