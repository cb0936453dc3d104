"""Stand-in for ``azureml.contrib.services`` inside a modelport scoring worker."""
