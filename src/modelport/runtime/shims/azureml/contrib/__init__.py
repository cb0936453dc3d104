"""Stand-in for ``azureml.contrib`` inside a modelport scoring worker."""
