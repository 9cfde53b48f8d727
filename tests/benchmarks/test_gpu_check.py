"""benchmarks/gpu_check.sh on a machine without CUDA: the dry run prints what would run; the real run refuses in one line."""

import os
import subprocess
import sys

import pytest

from tests.flows.helpers import PROJECT_ROOT

#: Packages the GPU box may lack: the check must not import them.
ABSENT = ("scipy", "tqdm", "pandas", "mlflow", "prefect", "hydra", "omegaconf", "yaml", "matplotlib", "pyarrow", "av", "ray")


def script(*args):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(PROJECT_ROOT / "benchmarks" / "gpu_check.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=PROJECT_ROOT)


def test_the_dry_run_prints_the_daemon_and_every_client_with_its_share():
    result = script("--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("would start the MPS daemon: nvidia-cuda-mps-control -d") for line in lines)
    measured = [line for line in lines if line.startswith("would measure resnet18 train at share")]
    assert len(measured) == 10 and "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=10 " in measured[0] and "=100 " in measured[-1]
    assert "-m ekya.execution.gpu.worker SPEC.json" in measured[0]
    assert any("3-stream window of 90 s" in line for line in lines)
    assert lines[-1].endswith("docs/gpu_check.md and its tables under " + str(PROJECT_ROOT / "docs" / "gpu_check") + "/")


@pytest.mark.slow
def test_without_cuda_the_check_is_refused_in_one_line():
    result = script("--no-compare")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: the GPU check needs CUDA (torch.cuda.is_available() is False); --dry-run shows what it would run"


@pytest.mark.slow
def test_the_check_needs_only_torch_torchvision_and_numpy():
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ABSENT)
    code = f"import sys; {blocked}; import ekya.models.checkpoints, ekya.models.predict, ekya.execution.gpu.worker, benchmarks.gpu_check"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
    assert result.returncode == 0, result.stderr[-2000:]
