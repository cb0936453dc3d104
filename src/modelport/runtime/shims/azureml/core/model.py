"""``azureml.core.model.Model`` inside a modelport scoring worker: ``Model.get_model_path``."""

from __future__ import annotations

from modelport.runtime.model_path import get_model_path


class Model:
    """The part of Azure ML's ``Model`` available inside a deployed service."""

    get_model_path = staticmethod(get_model_path)


__all__ = ["Model"]
