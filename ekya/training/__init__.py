"""Retraining one edge model with one retraining configuration, and measuring its cost.

Training the base model (:mod:`ekya.training.base_model`) and the golden model
(:mod:`ekya.training.golden`) lives here too; predicting and evaluating is :mod:`ekya.models.predict`.
"""

from ekya.training.config import RetrainConfig, load_retrain_space
from ekya.training.retrain import TrainResult, retrain

__all__ = ["RetrainConfig", "TrainResult", "load_retrain_space", "retrain"]
