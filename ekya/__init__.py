"""Ekya: continuous learning of video analytics models on edge GPU servers.

The library: no Prefect and no Hydra inside. ``flows/`` maps Hydra configs onto it.
"""

__version__ = "0.1.0"
