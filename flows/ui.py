"""``make ui``: the MLflow UI over the project's store, started in one process.

    python -m flows.ui [--port 5000] [--store sqlite:///mlruns/mlflow.db]

``mlflow ui`` answers after about 30 s on a busy 2-core machine: the CLI imports MLflow, then
starts uvicorn with 4 workers that import it again, plus a job runner and seven job consumers
(huey, for MLflow 3's GenAI jobs). This serves the same app (``mlflow.server.fastapi_app``) from
one uvicorn worker in this process, with job execution off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``):
MLflow is imported once.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:///mlruns/mlflow.db", help="MLflow tracking store (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)

    from mlflow.environment_variables import MLFLOW_SERVER_ENABLE_JOB_EXECUTION

    os.environ[MLFLOW_SERVER_ENABLE_JOB_EXECUTION.name] = "false"
    from mlflow.server import ARTIFACT_ROOT_ENV_VAR, BACKEND_STORE_URI_ENV_VAR
    from mlflow.server.handlers import initialize_backend_stores

    from ekya.tracking.mlflow_logging import artifact_location

    artifacts = artifact_location(args.store) or (Path("mlruns") / "artifacts").resolve().as_uri()
    # What `mlflow server` hands its uvicorn workers: the stores, as environment variables.
    os.environ[BACKEND_STORE_URI_ENV_VAR] = args.store
    os.environ[ARTIFACT_ROOT_ENV_VAR] = artifacts
    initialize_backend_stores(args.store, args.store, artifacts)

    import uvicorn

    print(f"MLflow UI on http://{args.host}:{args.port} over {args.store} (Ctrl-C stops it)", flush=True)
    uvicorn.run("mlflow.server.fastapi_app:app", host=args.host, port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
