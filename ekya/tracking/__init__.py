"""MLflow logging and reading runs back for comparisons and plots."""
