"""`make ui`: the MLflow UI over a store, in one process, answering the UI's queries."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ekya.tracking.mlflow_logging import RunLogger
from tests.flows.helpers import PROJECT_ROOT


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_ui_serves_the_stores_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    RunLogger(uri, "ekya", "a run", {"gpus": 1}).finish()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "flows.ui", "--store", uri, "--port", str(port)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search", method="POST",
                                         data=json.dumps({"max_results": 10}).encode(), headers={"Content-Type": "application/json"})
        experiments = json.load(urllib.request.urlopen(request, timeout=30))["experiments"]
        (ekya,) = [e for e in experiments if e["name"] == "ekya"]
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in ekya["tags"]
        assert b"<html" in urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().lower()
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert not children  # one process: no uvicorn workers, job runner or job consumers
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
