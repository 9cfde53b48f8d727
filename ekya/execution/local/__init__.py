"""The local executor: real retraining and inference on this device, in parts with one job each
(labeling, estimation, job costs, retraining; :class:`~ekya.execution.local.run.LocalRun` commits)."""
