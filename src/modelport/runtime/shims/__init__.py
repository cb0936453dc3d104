"""Import paths of Azure ML packages that entry scripts use, for worker processes only.

A worker puts this folder first on its ``sys.path`` (see :mod:`modelport.runtime.worker`), so
that ``azureml.core.model``, ``azureml.contrib.services.aml_request`` / ``aml_response`` and
``azureml_inference_server_http.api.aml_request`` / ``aml_response`` resolve to modelport's
implementations without installing Azure packages. Nothing outside a worker sees these names.
"""
