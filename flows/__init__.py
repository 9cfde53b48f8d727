"""Prefect flows, one module per entry point; thin wiring from Hydra configs to ``ekya`` and ``ekya_studies``."""
