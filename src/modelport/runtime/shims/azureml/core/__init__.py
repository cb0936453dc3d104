"""``azureml.core`` inside a modelport scoring worker: only what entry scripts use (``Model``)."""

from .model import Model

__all__ = ["Model"]
