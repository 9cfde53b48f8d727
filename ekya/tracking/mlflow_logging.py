"""The one place the platform talks to MLflow: runs, params, per-window metrics, artifacts.

The store is SQLite (``sqlite:///mlruns/mlflow.db``) with artifacts in a folder beside it
(MLflow 3 wants a database store). SQLite allows one writer at a time, so only the flow logs,
never concurrent tasks. A run that ends with an exception is marked FAILED, never left RUNNING.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

#: Tag holding the Hydra sweep folder shared by a multirun's parent and child runs.
SWEEP_TAG = "ekya.sweep_dir"
PARENT_TAG = "ekya.sweep_parent"
#: MLflow 3's UI opens an experiment by its kind: model development opens on its runs (untagged
#: experiments open on the GenAI overview, empty here).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
#: Tag holding the one-line error of a FAILED run.
ERROR_TAG = "ekya.error"
#: Tag saying why a run was marked KILLED (an interrupt, or its process gone).
KILLED_TAG = "ekya.killed"
#: Tag counting how often a run was resumed (reopened after it failed or was killed).
RESUMED_TAG = "ekya.resumed"

#: Tags naming the process that runs a run: host name, pid and the pid's start time (Linux; guards against pid reuse).
HOST_TAG, PID_TAG, PID_START_TAG = "ekya.host", "ekya.pid", "ekya.pid_start"

#: The runs this process has open (RUNNING), by run id: what an interrupt marks KILLED.
OPEN_RUNS: dict[str, "RunLogger"] = {}
#: Stores whose orphaned runs this process has marked KILLED already.
_CHECKED_STORES: set[str] = set()


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2 :].split()[19]


def process_tags() -> dict[str, str]:
    """This process's host, pid and start time, as run tags."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: process_start(pid)}


def process_alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` of this host still runs (and is the same process, when its start time is known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return not started or process_start(pid) in ("", started)


def mark_orphans_killed(client: MlflowClient) -> list[str]:
    """Mark KILLED the RUNNING runs of this store whose process, on this host, is gone; their ids.

    Each gets the tag ``ekya.killed`` saying which process was gone. Runs of other hosts are left alone.
    """
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    marked = []
    for run in client.search_runs(experiments, filter_string=query, max_results=50000):
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid), run.data.tags.get(PID_START_TAG, "")):
            continue
        client.set_tag(run.info.run_id, KILLED_TAG, f"process {pid} on {host} was gone (seen by process {os.getpid()})")
        client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
        marked.append(run.info.run_id)
    return marked


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their JSON text."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = value
    return flat


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts beside a SQLite store: ``sqlite:///x/mlflow.db`` -> ``file:///abs/x/artifacts``."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri[len("sqlite:///") :])
    return (database.parent.resolve() / "artifacts").as_uri()


class RunLogger:
    """One MLflow run of one experiment configuration.

    Args:
        tracking_uri: MLflow tracking URI, e.g. ``sqlite:///mlruns/mlflow.db``.
        experiment: MLflow experiment name.
        run_name: the run's display name.
        params: flattened configuration logged as params.
        tags: extra tags (dataset, scheduler, git sha ...).
        sweep_dir: the Hydra sweep folder when part of a multirun: the run becomes a child of
            the sweep's parent run (created by the first point).
        resume_run_id: reopen this run (FAILED or KILLED, of the same config) instead of creating
            one: it is RUNNING again under this process, its ``ekya.killed`` and ``ekya.error`` tags
            go and ``ekya.resumed`` counts the resumes; ``params`` are not logged again. In a
            sweep it becomes a child of ``sweep_dir``'s parent.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        sweep_dir: str | None = None,
        resume_run_id: str | None = None,
    ) -> None:
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        if tracking_uri not in _CHECKED_STORES:  # once per store and process
            _CHECKED_STORES.add(tracking_uri)
            mark_orphans_killed(self.client)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location(tracking_uri),
                                                               tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        else:
            self.experiment_id = found.experiment_id
            if EXPERIMENT_KIND_TAG not in found.tags:  # a store from before the tag
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        all_tags = {**(tags or {}), **process_tags()}
        all_tags["mlflow.runName"] = run_name
        if sweep_dir:
            all_tags[SWEEP_TAG] = sweep_dir
            all_tags["mlflow.parentRunId"] = self._sweep_parent(sweep_dir, all_tags)
        self.tracking_uri = tracking_uri
        if resume_run_id is not None:
            self.run_id = resume_run_id
            self._reopen(all_tags, bool(sweep_dir))
            OPEN_RUNS[self.run_id] = self
            return
        self.run_id = self.client.create_run(self.experiment_id, tags=all_tags).info.run_id
        OPEN_RUNS[self.run_id] = self
        try:
            self.log_params(params)
        except BaseException:
            self.finish(failed=True)
            raise

    def _reopen(self, tags: Mapping[str, str], in_sweep: bool) -> None:
        """Make the run RUNNING again under this process (see ``resume_run_id``)."""
        old = self.client.get_run(self.run_id).data.tags
        self.client.update_run(self.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        for key in (KILLED_TAG, ERROR_TAG):
            if key in old:
                self.client.delete_tag(self.run_id, key)
        keep = {HOST_TAG, PID_TAG, PID_START_TAG, *((SWEEP_TAG, "mlflow.parentRunId") if in_sweep else ())}
        self.set_tags({**{key: value for key, value in tags.items() if key in keep},
                       RESUMED_TAG: str(int(old.get(RESUMED_TAG, "0")) + 1)})

    def logged_steps(self, key: str) -> set[int]:
        """The steps at which metric ``key`` is logged (the windows, for per-window metrics)."""
        return {metric.step for metric in self.client.get_metric_history(self.run_id, key)}

    def logged_artifacts(self, folder: str) -> set[str]:
        """Paths of the artifacts directly under ``folder`` (e.g. ``windows`` -> ``windows/0``, ...)."""
        return {artifact.path for artifact in self.client.list_artifacts(self.run_id, folder)}

    def _sweep_parent(self, sweep_dir: str, tags: Mapping[str, str]) -> str:
        query = f"tags.`{SWEEP_TAG}` = '{sweep_dir}' and tags.`{PARENT_TAG}` = 'true'"
        existing = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1)
        if existing:
            return existing[0].info.run_id
        parent_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
        parent_tags.update({PARENT_TAG: "true", SWEEP_TAG: sweep_dir, "mlflow.runName": f"sweep {Path(sweep_dir).name}"})
        return self.client.create_run(self.experiment_id, tags=parent_tags).info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [mlflow.entities.Param(str(k), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        entries = [
            mlflow.entities.Metric(key, float(value), int(mlflow.utils.time.get_current_time_millis()), step or 0)
            for key, value in metrics.items()
        ]
        for start in range(0, len(entries), 500):
            self.client.log_batch(self.run_id, metrics=entries[start : start + 500])

    def log_json(self, artifact_path: str, payload: Any) -> None:
        """Write ``payload`` as JSON at ``artifact_path`` (e.g. ``windows/0/schedule.json``)."""
        self._log_file(artifact_path, lambda path: Path(path).write_text(json.dumps(payload, indent=2, default=_jsonable)))

    def log_figure(self, artifact_path: str, figure: Any) -> None:
        """Save a matplotlib figure as PNG at ``artifact_path`` (e.g. ``plots/accuracy.png``)."""
        self._log_file(artifact_path, lambda path: figure.savefig(path, dpi=120, bbox_inches="tight"))

    def log_file(self, artifact_dir: str, local_path: str | os.PathLike) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_dir)

    def _log_file(self, artifact_path: str, write) -> None:
        folder, name = os.path.split(artifact_path)
        with tempfile.TemporaryDirectory() as scratch:
            local = os.path.join(scratch, name)
            write(local)
            self.client.log_artifact(self.run_id, local, folder or None)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def finish(self, failed: bool = False) -> None:
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.client.set_terminated(self.run_id, status=status)
        OPEN_RUNS.pop(self.run_id, None)

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            try:
                self.set_tags({ERROR_TAG: f"{kind.__name__}: {value}"[:5000]})
            finally:
                self.finish(failed=True)
        else:
            self.finish()


def record_failed_run(tracking_uri: str, experiment: str, run_name: str, params: Mapping[str, Any], error: str,
                      tags: Mapping[str, str] | None = None, sweep_dir: str | None = None) -> str:
    """A FAILED run for a config that could not start (e.g. a sweep point whose config is invalid); its id."""
    logger = RunLogger(tracking_uri, experiment, run_name, params, tags, sweep_dir)
    try:
        logger.set_tags({ERROR_TAG: error[:5000]})
    finally:
        logger.finish(failed=True)
    return logger.run_id


def mark_killed(tracking_uri: str, run_id: str, reason: str) -> None:
    """Mark a run KILLED (MLflow's status for a run stopped from outside), with the reason as a tag."""
    client = MlflowClient(tracking_uri=tracking_uri)
    client.set_tag(run_id, KILLED_TAG, reason)
    client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.KILLED))
    OPEN_RUNS.pop(run_id, None)


def finish_sweep(tracking_uri: str, experiment: str, sweep_dir: str, status: str | None = None) -> dict[str, int]:
    """Close a multirun's parent run and record how many of its points finished and failed.

    The parent gets the metrics ``sweep/points``, ``sweep/points_finished`` and
    ``sweep/points_failed`` (FAILED or KILLED children) and the same counts as tags. Its status
    is ``status`` if given (e.g. ``KILLED`` for an interrupted sweep), else FINISHED when every
    point finished and FAILED otherwise. Returns the counts (zeros when the sweep has no runs).
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    counts = {"points": 0, "points_finished": 0, "points_failed": 0}
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return counts
    in_sweep = f"tags.`{SWEEP_TAG}` = '{sweep_dir}'"
    parents = client.search_runs([found.experiment_id], filter_string=f"{in_sweep} and tags.`{PARENT_TAG}` = 'true'")
    children = [run for run in client.search_runs([found.experiment_id], filter_string=in_sweep, max_results=50000)
                if run.data.tags.get(PARENT_TAG) != "true"]
    counts["points"] = len(children)
    counts["points_finished"] = sum(run.info.status == "FINISHED" for run in children)
    counts["points_failed"] = sum(run.info.status in ("FAILED", "KILLED") for run in children)
    final = status or ("FINISHED" if counts["points_failed"] == 0 else "FAILED")
    now = int(mlflow.utils.time.get_current_time_millis())
    for run in parents:
        client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric(f"sweep/{key}", float(value), now, 0) for key, value in counts.items()],
                         tags=[mlflow.entities.RunTag(f"ekya.{key}", str(value)) for key, value in counts.items()])
        client.set_terminated(run.info.run_id, status=final)
    return counts


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def iter_runs(tracking_uri: str, experiment: str, filter_string: str = "") -> Iterator[Any]:
    """Runs of ``experiment`` matching ``filter_string`` (for reports)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return iter(())
    return iter(client.search_runs([found.experiment_id], filter_string=filter_string, max_results=10000))
