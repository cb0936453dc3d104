"""Stand-in for ``azureml_inference_server_http`` inside a modelport scoring worker."""
