"""``python -m tests.flows.slow_cli SECONDS [overrides]``: ``flows.window_loop`` with each simulated
profile step SECONDS slower, printing ``profile <window> <stream>`` on stderr (interrupt and resume tests)."""

import sys
import time

from ekya.execution.simulated import SimulatedRun

SECONDS = float(sys.argv.pop(1))
_profile = SimulatedRun.profile


def slow_profile(self, window, stream):
    sys.stderr.write(f"profile {window} {stream}\n")  # one write: streams profile in parallel threads
    sys.stderr.flush()
    time.sleep(SECONDS)
    return _profile(self, window, stream)


SimulatedRun.profile = slow_profile

if __name__ == "__main__":
    import runpy

    runpy.run_module("flows.window_loop", run_name="__main__", alter_sys=True)  # as `python -m flows.window_loop`
