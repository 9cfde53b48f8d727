"""Which MLflow run a run continues (``resume=true`` or ``resume=<run id>``), checked before anything is written.

A run can be resumed when it did not finish: FAILED, KILLED, or RUNNING while its process (on this
host) is gone. It must have been started with the same config (its params, the ``resolved.*`` ones
aside) in the same experiment. ``resume=true`` takes the newest run of the config: an unfinished one
is resumed, a FINISHED one means there is nothing to run, and without one a new run starts.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping


from ekya.errors import EkyaError

if TYPE_CHECKING:  # MLflow is imported where the store is read, so that resume=false checks load none of it
    from mlflow.tracking import MlflowClient

#: What ``resume`` may be, for the messages.
VALID = "valid: true (the newest unfinished run of this config), false (a new run) or the id of a FAILED or KILLED run of this config"
#: Params a run logs besides its config, left out of the comparison.
RESOLVED_PREFIX = "resolved."
#: The metric logged once per window: its steps are the windows a run has logged.
WINDOW_METRIC = "accuracy/mean"


@dataclass(frozen=True)
class Resumption:
    """Where a run goes.

    Attributes:
        run_id: the MLflow run to reopen and append to; None: a new run.
        finished: the newest run of the config (``run_id``) FINISHED already: nothing to run.
        summary: that finished run's ``summary/*`` metrics.
        logged_windows: the windows the run to reopen has logged.
    """

    run_id: str | None = None
    finished: bool = False
    summary: dict[str, float] = field(default_factory=dict)
    logged_windows: tuple[int, ...] = ()


def param_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as MLflow stores them (text, at most 6000 characters)."""
    return {str(key): str(value)[:6000] for key, value in params.items()}


def config_differences(logged: Mapping[str, str], params: Mapping[str, Any]) -> list[str]:
    """``key=<there> there, <here> here`` for each config key whose value differs between a run's params and ``params``."""
    there = {key: value for key, value in logged.items() if not key.startswith(RESOLVED_PREFIX) and key != "resume"}
    here = {key: value for key, value in param_values(params).items() if key != "resume"}
    return [f"{key}={there.get(key, '(unset)')} there, {here.get(key, '(unset)')} here"
            for key in sorted(set(there) | set(here)) if there.get(key) != here.get(key)]


def _store_exists(tracking_uri: str) -> bool:
    """False for a SQLite store whose file is not there yet (opening it would create it)."""
    return not tracking_uri.startswith("sqlite:///") or Path(tracking_uri[len("sqlite:///") :]).is_file()


def _running_elsewhere(run: Any) -> str | None:
    """Why a RUNNING run cannot be resumed (its process still runs, or runs on another host), or None."""
    from ekya.tracking.mlflow_logging import HOST_TAG, PID_START_TAG, PID_TAG, process_alive

    tags = run.data.tags
    pid, host = tags.get(PID_TAG, ""), tags.get(HOST_TAG, "")
    if host != socket.gethostname():
        return f"is RUNNING on host {host or '(unknown)'}, whose processes this host cannot see"
    if pid.isdigit() and process_alive(int(pid), tags.get(PID_START_TAG, "")):
        return f"is still RUNNING (process {pid} on {host})"
    return None


def _logged_windows(client: MlflowClient, run_id: str) -> tuple[int, ...]:
    return tuple(sorted({metric.step for metric in client.get_metric_history(run_id, WINDOW_METRIC)}))


def find_resumption(tracking_uri: str, experiment: str, params: Mapping[str, Any], resume: bool | str) -> Resumption:
    """The run that a run of ``params`` (its flattened config) continues; reads the store, writes nothing.

    Args:
        tracking_uri: the MLflow store.
        experiment: the experiment the run belongs to.
        params: the run's flattened config (``resume`` itself is not compared).
        resume: False (a new run), True (the newest run of this config) or a run id.

    Raises:
        EkyaError: one line naming ``resume``'s value and what is valid: a run id that does not exist
            in ``experiment``, that FINISHED, that still runs, or whose config differs.
    """
    if resume is False:
        return Resumption()
    if not _store_exists(tracking_uri):
        if resume is True:
            return Resumption()
        raise EkyaError(f"resume={resume}: no such run (the MLflow store {tracking_uri} does not exist yet); {VALID}")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if resume is True:
        return _newest_of_config(client, found, params) if found is not None else Resumption()
    return _named_run(client, found, experiment, params, str(resume), tracking_uri)


def _newest_of_config(client: MlflowClient, found: Any, params: Mapping[str, Any]) -> Resumption:
    from ekya.tracking.mlflow_logging import PARENT_TAG

    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=50000)
    for run in runs:
        if run.data.tags.get(PARENT_TAG) == "true" or config_differences(run.data.params, params):
            continue
        run_id, status = run.info.run_id, run.info.status
        if status == "FINISHED":
            summary = {key: value for key, value in run.data.metrics.items() if key.startswith("summary/")}
            return Resumption(run_id, finished=True, summary=summary)
        if status == "RUNNING":
            why = _running_elsewhere(run)
            if why is not None:
                raise EkyaError(f"resume=true: run {run_id}, the newest of this config, {why}; wait for it, or run with resume=false")
        return Resumption(run_id, logged_windows=_logged_windows(client, run_id))
    return Resumption()


def _named_run(client: MlflowClient, found: Any, experiment: str, params: Mapping[str, Any], run_id: str, tracking_uri: str) -> Resumption:
    from mlflow.exceptions import MlflowException

    from ekya.tracking.mlflow_logging import PARENT_TAG

    try:
        run = client.get_run(run_id)
    except MlflowException:
        run = None
    if run is None or run.info.lifecycle_stage != "active":
        raise EkyaError(f"resume={run_id}: no such run in {tracking_uri}; {VALID}")
    if found is None or run.info.experiment_id != found.experiment_id:
        other = client.get_experiment(run.info.experiment_id).name
        raise EkyaError(f"resume={run_id}: the run is in experiment {other!r}, not {experiment!r} (tracking.experiment); {VALID}")
    if run.data.tags.get(PARENT_TAG) == "true":
        raise EkyaError(f"resume={run_id}: the run is a sweep's parent; resume the sweep's points with -m and resume=true")
    status = run.info.status
    if status == "FINISHED":
        raise EkyaError(f"resume={run_id}: the run FINISHED already; {VALID}")
    if status == "RUNNING":
        why = _running_elsewhere(run)
        if why is not None:
            raise EkyaError(f"resume={run_id}: the run {why}; {VALID}")
    differences = config_differences(run.data.params, params)
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise EkyaError(f"resume={run_id}: the run has another config ({shown}); resume it with the same config, "
                        f"or run with resume=false")
    return Resumption(run_id, logged_windows=_logged_windows(client, run_id))
