"""Ablation Ekya-FixedConfig: the thief's allocation with Uniform's fixed configuration."""

from __future__ import annotations

from ekya.scheduling.thief import ThiefScheduler


class FixedConfigScheduler(ThiefScheduler):
    """Ekya-FixedConfig (the paper's Figure 10a): resource stealing, one fixed retraining configuration.

    Args:
        retrain_config: the only retraining configuration streams may use (aliases resolved first).
        passes: sweeps over all (thief, victim) pairs, as for the thief.
        extra_starts: extra starting allocations, as for the thief.
        variant: ``improved`` or ``paper``, as for the thief (the improved variant's baseline starts
            are those of the problem restricted to ``retrain_config``).
    """

    name = "fixed_config"

    def __init__(self, retrain_config: str, passes: int = 1, extra_starts: bool = True, variant: str = "improved") -> None:
        super().__init__(passes=passes, extra_starts=extra_starts, allowed_configs=[retrain_config], variant=variant)
        self.retrain_config = retrain_config
