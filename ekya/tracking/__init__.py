"""MLflow logging of runs and sweeps (the studies read them back: ``ekya_studies.report``)."""
