"""Stand-in for the ``azureml`` namespace inside a modelport scoring worker."""
