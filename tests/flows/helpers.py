"""Building flow configs with Hydra's compose API, pointed at temporary stores."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def compose_config(tmp_path: Path, *overrides: str) -> dict:
    """The resolved config for ``overrides``, with MLflow and caches under ``tmp_path``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
                f"paths.cache_dir={tmp_path}/cache",
                f"paths.data_dir={tmp_path}/data",
                *overrides,
            ],
        )
    return OmegaConf.to_container(cfg, resolve=True)
