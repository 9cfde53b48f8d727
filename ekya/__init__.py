"""Ekya: continuous learning of video analytics models on edge GPU servers.

The platform: no Prefect and no Hydra inside. ``flows/`` maps Hydra configs onto it; the paper's
studies (``ekya_studies``) build on it. Nothing here imports either.
"""

__version__ = "0.1.0"
