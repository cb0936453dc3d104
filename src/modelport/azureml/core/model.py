"""``azureml.core.model``: ``Model`` (register, deploy, get_model_path, ...) and ``InferenceConfig``.

``Model.deploy`` returns the ``Webservice`` subclass Azure ML returned for the deployment config
given: ``LocalWebservice`` for ``LocalWebservice.deploy_configuration``, ``AciWebservice`` for
``AciWebservice.deploy_configuration``, ``AksWebservice`` otherwise. ``Model.package`` returns a
``ModelPackage``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from modelport.config import InferenceConfig
from modelport.errors import WebserviceException
from modelport.registry.model import Model as _Model
from modelport.service.package import ModelPackage, package


class Model(_Model):
    """Azure ML's ``Model``: a registered model version (see :class:`modelport.registry.model.Model`)."""

    @staticmethod
    @functools.wraps(_Model.register)
    def register(*args: Any, **kwargs: Any) -> Model:
        """``Model.register`` (Azure ML's signature); the model is typed as this facade's ``Model``."""
        model = _Model.register(*args, **kwargs)
        model.__class__ = Model
        return model  # type: ignore[return-value]

    @staticmethod
    @functools.wraps(_Model.list)
    def list(*args: Any, **kwargs: Any) -> list[Model]:  # type: ignore[override]
        """``Model.list`` (Azure ML's signature); models typed as this facade's ``Model``."""
        models = _Model.list(*args, **kwargs)
        for model in models:
            model.__class__ = Model
        return models  # type: ignore[return-value]

    @staticmethod
    def deploy(
        workspace: Any,
        name: str,
        models: Sequence[Any],
        inference_config: InferenceConfig | None = None,
        deployment_config: Any = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Any:
        """Deploy ``models`` as web service ``name``; returns the typed ``Webservice`` at once.

        No ``deployment_target`` (and no ``compute_target_name`` in the config): the local target.
        """
        from modelport.azureml.core.webservice import deploy_typed

        return deploy_typed(
            workspace,
            name,
            models,
            inference_config,
            deployment_config,
            deployment_target,
            overwrite,
            show_output,
        )

    # Azure ML's Model.package(workspace, models, ...): docs/models.md, "Packaging a model".
    package = staticmethod(package)

    @staticmethod
    def profile(*args: Any, **kwargs: Any) -> Any:
        """Not supported (Azure ML's resource recommendation service)."""
        raise WebserviceException("Model.profile is not supported by modelport.")


__all__ = ["InferenceConfig", "Model", "ModelPackage"]
