"""Session-wide test settings: Prefect's temporary server keeps its state in a temporary folder."""

import os
import tempfile

# Always a fresh folder: tests never share Prefect's database with the project's runs.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="ekya-prefect-")
# The same values as prefect.toml, which Prefect reads only from the working directory:
# set here too, so that tests started from another folder get them.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _stop_prefect_server():
    """Stop Prefect's temporary server while pytest still owns stdout (it logs as it stops)."""
    yield
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        if server.running:
            server.stop()
