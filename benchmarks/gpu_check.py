"""The GPU check (``benchmarks/gpu_check.sh``): on one CUDA GPU, in under 10 minutes, with only torch,
torchvision and numpy (no Hydra, Prefect or MLflow):

1. the MPS throughput table of resnet18: training and inference samples per second at GPU shares
   0.1 .. 1.0, one worker process per share under CUDA MPS;
2. a 3-stream window of T seconds with every training and inference job side by side as worker
   processes, held to their placed shares by MPS, re-planned by the thief when a job finishes
   (and, unless ``--no-compare``, the same window with ``isolation=none``: no limits);
3. the figures, with the GPU's name, written to ``docs/gpu_check.md`` (the tables also as CSV
   under ``docs/gpu_check/``).

The parent process never touches CUDA (the GPU's name comes from a worker); models are evaluated
on its CPU. ``--dry-run`` prints what would run, without CUDA.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.execution.gpu.jobs import ConcurrentOutcome, Workers, play_concurrently, write_crops
from ekya.execution.gpu.measure import SHARES, MeasuredCurve, measure_curve, measure_spec
from ekya.execution.gpu.mps import MpsDaemon, client_environment
from ekya.execution.placement import place
from ekya.scheduling import Problem, StreamProblem, build_scheduler
from ekya.scheduling.dynamics import instantaneous_accuracy

ROOT = Path(__file__).resolve().parents[1]
MODEL = "resnet18"
RESOLUTION = 64          # crop side: large enough that a share of the GPU matters
BATCH = 64
STREAMS = 3
#: Retraining configurations offered to every stream (all layers, a fresh 64-unit head): each trains for as many epochs
#: over window k-1 as take this fraction of T on the whole GPU at the measured rate, so the window's jobs last tens of seconds.
COST_FRACTION = {"short": 0.1, "medium": 0.25, "long": 0.5}
#: Guessed gains of each configuration (no micro-profiler on the GPU box); the scheduler plans with them.
GUESSED_GAIN = {"short": 0.05, "medium": 0.10, "long": 0.13}
#: Inference configurations: (resolution, share of frames, accuracy factor guess).
INFERENCE = {"full": (None, 1.0, 1.0), "half": (RESOLUTION // 2, 0.5, 0.9)}


def gpu_info(python: str) -> dict:
    """The GPU's name and torch's version, from a child process (this one stays off CUDA)."""
    code = ("import json, torch; ok = torch.cuda.is_available(); print(json.dumps({'cuda': ok, 'torch': torch.__version__, "
            "'count': torch.cuda.device_count() if ok else 0, 'name': torch.cuda.get_device_name(0) if ok else None}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise EkyaError(f"could not ask torch about CUDA: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def train_spec(model_in: str, data: str, folder: Path, name: str, epochs: int, seed: int, train_layers="all",
               device: str = "cuda") -> dict:
    return {"kind": "train", "device": device, "model_in": model_in, "data": data, "seed": seed, "train_layers": train_layers,
            "hidden_size": 64, "epochs": epochs, "batch_size": BATCH, "learning_rate": 0.01,
            "state": str(folder / f"{name}.state.pt"), "model_out": str(folder / f"{name}.pt")}


def epochs_for(rates: dict[str, MeasuredCurve], samples: int, window_seconds: float) -> dict[str, int]:
    """Epochs of each configuration: :data:`COST_FRACTION` of T on the whole GPU at the measured training rate."""
    train_full = float(np.interp(1.0, rates["train"].shares, rates["train"].samples_per_second))
    return {name: max(1, int(round(fraction * window_seconds * train_full / samples))) for name, fraction in COST_FRACTION.items()}


def window_problem(serving: list[float], rates: dict[str, MeasuredCurve], samples: int, window_seconds: float) -> Problem:
    """The window as the thief sees it: costs from the measured training rate at the full GPU, guessed gains, inference
    demands as a quarter of the GPU per stream at full resolution (0.075 at half resolution and half the frames)."""
    train_full = float(np.interp(1.0, rates["train"].shares, rates["train"].samples_per_second))
    epochs = epochs_for(rates, samples, window_seconds)
    streams = []
    for s, accuracy in enumerate(serving):
        names = tuple(COST_FRACTION)
        costs = np.array([epochs[n] * samples / train_full for n in names])
        gains = np.array([min(1.0, accuracy + GUESSED_GAIN[n]) for n in names])
        demand = np.array([0.25 * INFERENCE[n][1] * (1.0 if INFERENCE[n][0] is None else 0.6) for n in INFERENCE])
        factor = np.array([INFERENCE[n][2] for n in INFERENCE])
        streams.append(StreamProblem(f"cam{s}", accuracy, names, costs, gains, tuple(INFERENCE), demand, factor))
    train_curve = rates["train"]

    def scaling(shares: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(shares, dtype=float), (0.0, *train_curve.shares), (0.0, *train_curve.relative))

    return Problem(tuple(streams), gpus=1.0, delta=0.1, window_seconds=window_seconds, min_accuracy=0.0, scaling=scaling)


def evaluate_cpu(checkpoint: str, images: np.ndarray, labels: np.ndarray, resolution: int | None = None) -> float:
    from ekya.models.checkpoints import load_checkpoint
    from ekya.models.predict import predict

    return float(np.mean(predict(load_checkpoint(checkpoint), images, resolution=resolution, device="cpu") == labels))


def played_rows(played: ConcurrentOutcome) -> list[str]:
    rows = []
    for segment in played.segments:
        jobs = ", ".join(f"cam{j.stream} {j.kind} {j.share:.2f}@GPU{j.gpu}" for j in segment.placement.jobs)
        rows.append(f"| {segment.start:6.1f} | {segment.end:6.1f} | {jobs} |")
    return rows


def run_window(isolation: str, problem: Problem, folder: Path, model_in: str, data: list[tuple[str, str]], epochs: dict[str, int],
               python: str, device: str = "cuda") -> ConcurrentOutcome:
    def spec(s: int, kind: str, config: str) -> dict:
        if kind == "train":
            return train_spec(model_in, data[s][0], folder, f"{s}-{config}", epochs[config], seed=s, device=device)
        resolution, _, _ = INFERENCE[config]
        return {"kind": "inference", "device": device, "model_in": model_in, "data": data[s][1], "batch_size": BATCH,
                "resolution": resolution, "seconds": None}

    daemon = MpsDaemon(folder / "mps") if isolation == "mps" and device == "cuda" else None
    if daemon is not None:
        daemon.start()
    try:
        return play_concurrently(problem, build_scheduler("thief"), spec, Workers(folder / "jobs", daemon, python=python))
    finally:
        if daemon is not None:
            daemon.stop()


def dry_run(args: argparse.Namespace) -> int:
    daemon = MpsDaemon(Path(tempfile.gettempdir()) / "ekya-gpu-check" / "mps")
    workers = Workers(Path(tempfile.gettempdir()) / "ekya-gpu-check" / "jobs", daemon, python=args.python)
    print(f"would ask a worker for the GPU's name: {args.python} -c 'import torch; torch.cuda.get_device_name(0)'")
    print(f"would start the MPS daemon: {' '.join(daemon.start_command())}  "
          f"(CUDA_MPS_PIPE_DIRECTORY={daemon.pipe_dir} CUDA_MPS_LOG_DIRECTORY={daemon.log_dir})")
    for mode in ("train", "inference"):
        spec = measure_spec(MODEL, mode, BATCH, RESOLUTION, args.seconds_per_share)
        for share in args.shares:
            env = client_environment(0, share, daemon)
            print(f"would measure {MODEL} {mode} at share {share:g}: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} "
                  f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={env['CUDA_MPS_ACTIVE_THREAD_PERCENTAGE']} "
                  f"{' '.join(workers.command(Path('SPEC.json')))}  # {json.dumps(spec)}")
    print(f"would train the base {MODEL} on the hold-out crops (share 1.0), then play a {STREAMS}-stream window of "
          f"{args.window_seconds:g} s: thief on 1 GPU, configurations {', '.join(COST_FRACTION)}, inference {', '.join(INFERENCE)}; "
          f"isolation mps{'' if args.no_compare else ' then none'}")
    example = place(build_scheduler("fair").schedule(window_problem(
        [0.5] * STREAMS, {m: MeasuredCurve(m, (0.5, 1.0), (70.0, 100.0)) for m in ("train", "inference")}, 1000,
        args.window_seconds)), 1)
    for job in example.jobs:
        env = client_environment(job.gpu, job.share, daemon)
        print(f"  e.g. cam{job.stream} {job.kind}: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} "
              f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={env['CUDA_MPS_ACTIVE_THREAD_PERCENTAGE']}")
    print(f"would write {args.out} and its tables under {Path(args.out).with_suffix('')}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print what would run; no CUDA")
    parser.add_argument("--out", default=str(ROOT / "docs" / "gpu_check.md"))
    parser.add_argument("--window-seconds", type=float, default=90.0)
    parser.add_argument("--seconds-per-share", type=float, default=3.0)
    parser.add_argument("--no-compare", action="store_true", help="skip the window with isolation=none")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the worker processes")
    parser.add_argument("--crops", type=int, default=1200, help="crops per window and stream")
    parser.add_argument("--base-epochs", type=int, default=8)
    parser.add_argument("--shares", default=",".join(f"{s:g}" for s in SHARES), help="GPU shares measured, comma-separated")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: the same steps with worker processes on the CPU, no MPS (to test the script without a GPU)")
    args = parser.parse_args(argv)
    args.shares = tuple(float(s) for s in args.shares.split(","))
    if args.dry_run:
        return dry_run(args)
    started = time.monotonic()
    info = gpu_info(args.python) if args.device == "cuda" else {"cuda": True, "name": "cpu", "count": 0, "torch": "?"}
    if not info["cuda"]:
        print("error: the GPU check needs CUDA (torch.cuda.is_available() is False); --dry-run shows what it would run",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    tables = out.with_suffix("")
    tables.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ekya-gpu-check-") as tmp:
        folder = Path(tmp)
        print(f"{info['name']}: measuring the MPS throughput table of {MODEL} ...", flush=True)
        daemon = MpsDaemon(folder / "mps").start() if args.device == "cuda" else None
        try:
            workers = Workers(folder / "measure", daemon, python=args.python)
            curves = {mode: measure_curve(MODEL, mode, workers, shares=args.shares, batch_size=BATCH, resolution=RESOLUTION,
                                          seconds=args.seconds_per_share, device=args.device) for mode in ("train", "inference")}
        finally:
            if daemon is not None:
                daemon.stop()
        for mode, curve in curves.items():
            suffix = "" if mode == "train" else "-inference"
            (tables / f"throughput-{MODEL}-{slug(info['name'])}{suffix}-mps.csv").write_text(curve.csv_text())
        measured_at = time.monotonic() - started

        print("base model and window data ...", flush=True)
        source = SyntheticSource(num_streams=STREAMS, num_windows=2, crops_per_window=args.crops, frames_per_window=120,
                                 resolution=RESOLUTION, window_seconds=args.window_seconds, holdout_streams=1, holdout_windows=2,
                                 seed=0, cache_dir=None)
        holdout = source.holdout()
        images = np.concatenate([w.images for w in holdout])
        labels = np.concatenate([w.labels for w in holdout])
        from ekya.models.checkpoints import save_checkpoint
        from ekya.models.factory import build_model

        initial = str(save_checkpoint(build_model(MODEL, hidden_size=64), folder / "initial.pt"))
        base = Workers(folder / "base", None, python=args.python).start(
            (0, "train"), train_spec(initial, write_crops(folder / "holdout.npz", images, labels), folder, "base", args.base_epochs, 0,
                                       device=args.device), 0, 1.0)
        if base.process.wait() != 0 or base.status().get("state") != "done":
            raise EkyaError(f"training the base model failed: {base.status().get('error')}")
        model_in = str(folder / "base.pt")
        data, serving = [], []
        for s, name in enumerate(source.streams):
            previous, current = source.window(name, 0), source.window(name, 1)
            data.append((write_crops(folder / f"{s}-train.npz", previous.images, previous.labels),
                         write_crops(folder / f"{s}-serve.npz", current.images, current.labels)))
            serving.append(evaluate_cpu(model_in, current.images, current.labels))
        samples = len(source.window(source.streams[0], 0).labels)
        problem = window_problem(serving, curves, samples, args.window_seconds)
        epochs = epochs_for(curves, samples, args.window_seconds)

        windows = {}
        for isolation in (("mps",) if args.no_compare else ("mps", "none")) if args.device == "cuda" else ("none",):
            print(f"{STREAMS}-stream window of {args.window_seconds:g} s, isolation={isolation} ...", flush=True)
            played = run_window(isolation, problem, folder / isolation, model_in, data, epochs, args.python, args.device)
            accuracy = []
            for s in range(STREAMS):
                current = source.window(source.streams[s], 1)
                finish = played.finish_seconds[s]
                retrained = None
                if finish is not None:
                    config = next(seg.placement.decision.streams[s].retrain_config for seg in reversed(played.segments)
                                  if seg.start < finish + 1e-9 and seg.placement.decision.streams[s].retrain_config)
                    retrained = evaluate_cpu(str(folder / isolation / f"{s}-{config}.pt"), current.images, current.labels)
                total = 0.0
                for seg in played.segments:
                    choice = seg.placement.decision.streams[s]
                    model = retrained if finish is not None and finish <= seg.start + 1e-9 else serving[s]
                    demand = problem.streams[s].inference_demand[problem.streams[s].inference_names.index(choice.inference_config)]
                    total += instantaneous_accuracy(model, choice.inference_share, demand, INFERENCE[choice.inference_config][2]) * (
                        min(seg.end, args.window_seconds) - seg.start)
                accuracy.append((total / args.window_seconds, retrained))
            windows[isolation] = (played, accuracy)
    write_report(out, info, curves, windows, serving, epochs, measured_at, time.monotonic() - started, args)
    print(f"wrote {out} ({time.monotonic() - started:.0f} s)")
    return 0


def write_report(out: Path, info: dict, curves: dict[str, MeasuredCurve], windows: dict, serving: list[float],
                 epochs: dict[str, int], measured_at: float, total: float, args: argparse.Namespace) -> None:
    lines = [
        "# GPU check",
        "",
        f"Written by `benchmarks/gpu_check.sh` on **{info['name']}** ({info['count']} visible), torch {info['torch']}, "
        f"{time.strftime('%Y-%m-%d')}; {total:.0f} s in all. How MPS, placement and Ray work: [gpu.md](gpu.md).",
        "",
        f"## MPS throughput of {MODEL} ({BATCH} crops of {RESOLUTION}x{RESOLUTION} a step, one process per share)",
        "",
        "| share | train samples/s | train relative | inference samples/s | inference relative |",
        "|---|---|---|---|---|",
    ]
    train, infer = curves["train"], curves["inference"]
    for k, share in enumerate(train.shares):
        lines.append(f"| {share:g} | {train.samples_per_second[k]:.0f} | {train.relative[k]:.2f} | "
                     f"{infer.samples_per_second[k]:.0f} | {infer.relative[k]:.2f} |")
    lines += ["", f"Measured in {measured_at:.0f} s. Tables (`executor.scaling=PATH`, or copy into `.cache/models/` for "
              "`executor.scaling=measured`): "
              f"[train](gpu_check/throughput-{MODEL}-{slug(info['name'])}-mps.csv), "
              f"[inference](gpu_check/throughput-{MODEL}-{slug(info['name'])}-inference-mps.csv).", ""]
    for isolation, (played, accuracy) in windows.items():
        lines += [f"## A {STREAMS}-stream window of {args.window_seconds:g} s, isolation={isolation}", "",
                  f"Thief on one GPU, configurations (all layers) {', '.join(f'{n}: {e} epochs' for n, e in epochs.items())}; "
                  f"{played.decisions} decisions, {played.restarts} job restarts for new shares, "
                  f"{played.repairs} placement repairs.", "",
                  "| from s | to s | jobs (share@GPU) |", "|---|---|---|", *played_rows(played), "",
                  "| stream | serving acc. | retrained acc. | finished at s | window acc. | train samples/s (last run) | "
                  "inference samples/s (last run) |", "|---|---|---|---|---|---|---|"]
        for s in range(STREAMS):
            window_accuracy, retrained = accuracy[s]
            train_status = played.statuses.get((s, "train"), {})
            infer_status = played.statuses.get((s, "inference"), {})
            finish = played.finish_seconds[s]
            lines.append(f"| cam{s} | {100 * serving[s]:.1f}% | {'-' if retrained is None else f'{100 * retrained:.1f}%'} | "
                         f"{'-' if finish is None else f'{finish:.1f}'} | {100 * window_accuracy:.1f}% | "
                         f"{train_status.get('samples_per_second', 0):.0f} | {infer_status.get('frames_per_second', 0):.0f} |")
        lines.append("")
    lines += ["Accuracies: measured on the window's crops (synthetic data, ground-truth labels); the window accuracy uses the "
              "platform's accuracy model over the real segments. The scheduler planned with guessed gains (no micro-profiler "
              "here), so its choices show the machinery, not the paper's accuracy.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
