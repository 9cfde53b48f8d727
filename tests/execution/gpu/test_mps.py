"""CUDA MPS on a CPU machine: each client's environment, the daemon's command lines (a stand-in control program), refusals."""

import stat

import pytest

from ekya.errors import EkyaError
from ekya.execution.gpu.jobs import Workers
from ekya.execution.gpu.mps import MpsDaemon, check_isolation, client_environment, thread_percentage


def test_thread_percentage_is_the_share_times_100():
    assert [thread_percentage(s) for s in (0.1, 0.25, 0.333, 1.0, 0.001)] == [10, 25, 33, 100, 1]
    with pytest.raises(EkyaError, match=r"share of its GPU must be in \(0, 1\], got 1.5"):
        thread_percentage(1.5)


def test_client_environment_under_mps_and_without(tmp_path):
    daemon = MpsDaemon(tmp_path)
    base = {"CUDA_VISIBLE_DEVICES": "2,3", "PATH": "/bin", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "7"}
    env = client_environment(1, 0.3, daemon, base)
    # MPS renumbers the daemon's visible devices from 0: the client names its GPU by index.
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "30"
    assert env["CUDA_MPS_PIPE_DIRECTORY"] == str(tmp_path / "pipe") and env["CUDA_MPS_LOG_DIRECTORY"] == str(tmp_path / "log")
    plain = client_environment(1, 0.3, None, base)
    assert plain["CUDA_VISIBLE_DEVICES"] == "3" and "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in plain  # isolation=none: no limit
    assert client_environment(0, 0.5, None, {})["CUDA_VISIBLE_DEVICES"] == "0"
    with pytest.raises(EkyaError, match="GPU 2: CUDA_VISIBLE_DEVICES=2,3 has 2 device"):
        client_environment(2, 0.5, None, base)
    with pytest.raises(EkyaError, match="executor.isolation='full'; valid: mps, none"):
        check_isolation("full")


def fake_control(tmp_path, fail=False):
    """A stand-in nvidia-cuda-mps-control that logs its arguments, stdin and pipe folder."""
    log = tmp_path / "control.log"
    script = tmp_path / "bin" / "nvidia-cuda-mps-control"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
if [ "$1" = "-d" ]; then echo "start $CUDA_MPS_PIPE_DIRECTORY" >> {log}; {'echo "An instance of this daemon is already running" >&2; exit 1' if fail else 'exit 0'}; fi
read line; echo "$line" >> {log}
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_the_daemon_is_started_and_told_to_quit(tmp_path):
    control, log = fake_control(tmp_path)
    daemon = MpsDaemon(tmp_path / "mps", control=control)
    assert daemon.start_command() == [control, "-d"]
    with daemon:
        assert daemon.running and (tmp_path / "mps" / "pipe").is_dir()
    assert not daemon.running
    assert log.read_text().splitlines() == [f"start {tmp_path / 'mps' / 'pipe'}", "get_server_list", "quit"]
    daemon.stop()  # twice is harmless
    assert len(log.read_text().splitlines()) == 3


def test_a_daemon_that_cannot_start_is_one_line(tmp_path):
    with pytest.raises(EkyaError, match=r"^executor.isolation=mps: no-such-mps-control is not on PATH .*valid: executor.isolation=none"):
        MpsDaemon(tmp_path, control="no-such-mps-control").start()
    control, _ = fake_control(tmp_path, fail=True)
    with pytest.raises(EkyaError, match=r"^executor.isolation=mps: .* -d failed \(An instance of this daemon is already running\); valid"):
        MpsDaemon(tmp_path / "mps", control=control).start()


def test_a_worker_starts_with_its_gpu_and_share(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    workers = Workers(tmp_path / "jobs", MpsDaemon(tmp_path / "mps"))
    assert workers.command(tmp_path / "x.json")[1:] == ["-m", "ekya.execution.gpu.worker", str(tmp_path / "x.json")]
    worker = workers.start((0, "train"), {"kind": "probe"}, gpu=1, share=0.4)
    assert worker.process.wait(60) == 0
    reported = worker.status()["environment"]
    assert reported == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "40",
                        "CUDA_MPS_PIPE_DIRECTORY": str(tmp_path / "mps" / "pipe")}
    assert worker.status()["state"] == "done"
    workers.stop_all()
    assert not workers.running
