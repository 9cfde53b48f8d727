"""Live inference of an edge model under an inference configuration: accuracy and GPU demand."""

from ekya.inference.config import InferenceConfig, load_inference_space
from ekya.inference.run import InferenceResult, measure_inference_space, run_inference

__all__ = ["InferenceConfig", "InferenceResult", "load_inference_space", "measure_inference_space", "run_inference"]
