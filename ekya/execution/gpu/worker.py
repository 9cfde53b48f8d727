"""A job's process: ``python -m ekya.execution.gpu.worker SPEC.json``.

The platform starts one process per job (a stream's training or inference job) with the job's
GPU and share in its environment (:func:`ekya.execution.gpu.mps.client_environment`). The spec
(JSON) names the job:

- ``kind``: ``train``, ``inference`` or ``probe`` (reports its environment and exits; no torch);
- ``status``: a JSON file the worker rewrites as it goes (``state``: running, done, preempted,
  stopped or failed; progress; throughput; the CUDA variables it was started with);
- ``device``: ``cuda`` (the job's one visible GPU, ``cuda:0``) or ``cpu``;
- train: ``model_in`` (checkpoint of the serving model), ``data`` (``.npz`` with ``images`` uint8
  N x 3 x H x W and ``labels``), ``train_layers``, ``hidden_size``, ``epochs``, ``batch_size``,
  ``learning_rate``, ``seed``, ``state`` (where a preempted job keeps its progress) and
  ``model_out`` (the retrained model's checkpoint);
- inference: ``model_in``, ``data``, ``batch_size``, ``resolution`` (null: the crops' own),
  ``seconds`` (how long to serve; null: until stopped);
- measure: ``mode`` (train or inference), ``model``, ``hidden_size``, ``batch_size``, ``resolution``,
  ``warmup_steps``, ``seconds``: steps on random crops, reported as ``samples_per_second``
  (:mod:`ekya.execution.gpu.measure`).

SIGTERM asks the job to stop at the next step: a training job saves its state (model, optimizer,
step) and exits with ``state: preempted``; started again with the same spec (and a new share),
it resumes from that step, so a share change costs one checkpoint and one process start.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Seconds between status rewrites while a job runs.
STATUS_EVERY_SECONDS = 0.5
#: The environment variables a worker reports in its status.
REPORTED_ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "CUDA_MPS_PIPE_DIRECTORY")


class Status:
    """The worker's status file, rewritten atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.values: dict[str, Any] = {"pid": os.getpid(), "environment": {k: os.environ.get(k) for k in REPORTED_ENVIRONMENT}}
        self.written = 0.0

    def write(self, force: bool = True, **values: Any) -> None:
        self.values.update(values)
        now = time.monotonic()
        if not force and now - self.written < STATUS_EVERY_SECONDS:
            return
        self.written = now
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.values, handle)
        os.replace(tmp, self.path)


def read_status(path: str | os.PathLike) -> dict[str, Any]:
    """A worker's last status ({} before its first write)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


class StopFlag:
    """Set by SIGTERM: the job stops at its next step."""

    def __init__(self) -> None:
        self.set = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.set = True


def _device(spec: dict) -> Any:
    import torch

    if spec["device"] == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {spec['device']}: CUDA is not available in this worker "
                           f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})")
    return torch.device("cuda:0")


def _load(spec: dict):
    import numpy as np

    from ekya.models.checkpoints import load_checkpoint

    with np.load(spec["data"]) as data:
        images, labels = data["images"], data["labels"]
    return load_checkpoint(spec["model_in"]), images, labels


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(spec: dict, status: Status, stop: StopFlag) -> str:
    """Train (or resume) the job; returns its final state (done or preempted)."""
    import numpy as np
    import torch
    from torch.nn import functional

    from ekya.models.checkpoints import save_checkpoint
    from ekya.models.factory import freeze_all_but_last, images_to_tensor, set_training_mode, with_new_head

    device = _device(spec)
    model, images, labels = _load(spec)
    torch.manual_seed(int(spec["seed"]))
    if int(spec["hidden_size"]) != model.hidden_size:
        model = with_new_head(model, int(spec["hidden_size"]))
    model = model.to(device)
    parameters = freeze_all_but_last(model, spec["train_layers"])
    optimizer = torch.optim.SGD(parameters, lr=float(spec["learning_rate"]), momentum=0.9)
    batch = int(spec["batch_size"])
    per_epoch = max(1, math.ceil(len(labels) / batch))
    total = per_epoch * int(spec["epochs"])
    state_path = Path(spec["state"])
    step = 0
    if state_path.is_file():
        saved = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step = int(saved["step"])
    started, first = time.perf_counter(), step
    status.write(state="running", step=step, total_steps=total, resumed_from=first)
    set_training_mode(model, spec["train_layers"])
    while step < total:
        if stop.set:
            payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
            tmp = state_path.with_suffix(".tmp")
            torch.save(payload, tmp)
            os.replace(tmp, state_path)
            _report(status, "preempted", step, total, first, started, batch, device)
            return "preempted"
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([int(spec["seed"]), epoch]).permutation(len(labels))[k * batch:(k + 1) * batch]
        inputs = images_to_tensor(images[order], device=device)
        targets = torch.from_numpy(labels[order].astype(np.int64)).to(device)
        loss = functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 4 == 0:
            _synchronize(device)
            status.write(force=False, step=step, samples_per_second=_rate(step - first, batch, started))
    _synchronize(device)
    save_checkpoint(model.cpu().eval(), spec["model_out"])
    state_path.unlink(missing_ok=True)
    _report(status, "done", step, total, first, started, batch, device)
    return "done"


def _rate(steps: int, batch: int, started: float) -> float:
    seconds = time.perf_counter() - started
    return steps * batch / seconds if seconds > 0 else 0.0


def _report(status: Status, state: str, step: int, total: int, first: int, started: float, batch: int, device: Any) -> None:
    _synchronize(device)
    status.write(state=state, step=step, total_steps=total, seconds=time.perf_counter() - started,
                 samples_per_second=_rate(step - first, batch, started))


def inference(spec: dict, status: Status, stop: StopFlag) -> str:
    """Serve the window's crops in batches until ``seconds`` pass or the job is stopped; returns stopped."""
    import torch

    from ekya.models.factory import images_to_tensor

    device = _device(spec)
    model, images, _ = _load(spec)
    model = model.to(device).eval()
    batch = int(spec["batch_size"])
    limit = spec.get("seconds")
    frames, started, position = 0, time.perf_counter(), 0
    status.write(state="running", frames=0)
    with torch.inference_mode():
        while not stop.set and (limit is None or time.perf_counter() - started < float(limit)):
            chunk = images[position:position + batch]
            position = (position + batch) % len(images)
            model(images_to_tensor(chunk, spec.get("resolution"), device=device))
            frames += len(chunk)
            if frames % (8 * batch) < batch:
                _synchronize(device)
                status.write(force=False, frames=frames, frames_per_second=frames / (time.perf_counter() - started))
    _synchronize(device)
    seconds = time.perf_counter() - started
    status.write(state="stopped", frames=frames, seconds=seconds, frames_per_second=frames / seconds if seconds > 0 else 0.0)
    return "stopped"


def measure(spec: dict, status: Status, stop: StopFlag) -> str:
    """Training or inference steps on random crops for ``seconds`` after ``warmup_steps``; reports samples per second."""
    import numpy as np
    import torch
    from torch.nn import functional

    from ekya.models.factory import build_model, images_to_tensor

    device = _device(spec)
    torch.manual_seed(0)
    model = build_model(spec["model"], hidden_size=int(spec["hidden_size"])).to(device)
    batch, resolution = int(spec["batch_size"]), int(spec["resolution"])
    rng = np.random.default_rng(0)
    images = images_to_tensor(rng.integers(0, 256, (batch, 3, resolution, resolution), dtype=np.uint8), device=device)
    labels = torch.from_numpy(rng.integers(0, model.num_classes, batch)).to(device)
    training = spec["mode"] == "train"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if training else None
    model.train(training)

    def step() -> None:
        if training:
            loss = functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            with torch.inference_mode():
                model(images)

    for _ in range(int(spec["warmup_steps"])):
        step()
    _synchronize(device)
    steps, started = 0, time.perf_counter()
    while not stop.set and time.perf_counter() - started < float(spec["seconds"]):
        step()
        steps += 1
        if steps % 8 == 0:
            _synchronize(device)
    _synchronize(device)
    seconds = time.perf_counter() - started
    status.write(state="done", steps=steps, seconds=seconds, samples_per_second=steps * batch / seconds)
    return "done"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ekya.execution.gpu.worker SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    status = Status(spec["status"])
    stop = StopFlag()
    try:
        if spec["kind"] == "probe":
            status.write(state="done")
            return 0
        import torch

        torch.set_num_threads(int(spec.get("torch_threads", 1)))
        {"train": train, "inference": inference, "measure": measure}[spec["kind"]](spec, status, stop)
        return 0
    except Exception as error:  # reported to the platform through the status file, then a non-zero exit
        status.write(state="failed", error=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
