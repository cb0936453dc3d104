"""Stand-in for ``azureml_inference_server_http.api`` inside a modelport scoring worker."""
