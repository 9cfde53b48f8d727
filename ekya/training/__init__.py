"""Retraining one edge model with one retraining configuration, and measuring its cost."""

from ekya.training.config import RetrainConfig, load_retrain_space
from ekya.training.retrain import TrainResult, evaluate, predict, retrain

__all__ = ["RetrainConfig", "TrainResult", "evaluate", "load_retrain_space", "predict", "retrain"]
