"""`python -m flows.reproduce`: bad input exits 2 with one line."""

import subprocess
import sys

from tests.flows.helpers import PROJECT_ROOT


def test_bad_value_on_the_command_line_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.reproduce", "stages=[bogus]", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown stage(s) 'bogus'; valid: trace, studies, reports, sim_vs_local, headline"
    ]
