#!/usr/bin/env bash
# The GPU check: the MPS throughput table of resnet18 and a 3-stream window with training and
# inference side by side, written to docs/gpu_check.md with the GPU's name. Under 10 minutes on
# one H100/H200. Needs only torch, torchvision and numpy (no Hydra, Prefect or MLflow), and the
# NVIDIA driver's nvidia-cuda-mps-control.
#
#   benchmarks/gpu_check.sh             # run it (CUDA needed)
#   benchmarks/gpu_check.sh --dry-run   # print what it would run (no CUDA)
#   benchmarks/gpu_check.sh --no-compare --window-seconds 60 --out docs/gpu_check.md
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m benchmarks.gpu_check --python "$PY" "$@"
