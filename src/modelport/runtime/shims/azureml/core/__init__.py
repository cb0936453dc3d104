"""``azureml.core`` inside a modelport scoring worker: only what entry scripts use (``Model``)."""

from azureml.core.model import Model

__all__ = ["Model"]
