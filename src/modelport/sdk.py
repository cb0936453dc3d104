"""The Python SDK's ``Workspace`` and ``Model``, as ``from modelport import Workspace, Model`` gives them.

The registry and the workspace are lower layers: a registered model knows nothing of services,
a workspace nothing of models. Azure ML's conveniences that reach across layers (``Model.deploy``,
``Model.package``, ``ws.models``) are added here, in the layer above the service lifecycle
(docs/architecture.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelport.config.deployment import DeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.registry import model as registry_model
from modelport.service.deploy import deploy
from modelport.service.package import package
from modelport.service.webservice import Webservice
from modelport.workspace import workspace as native_workspace


class Model(registry_model.Model):
    """A registered model version (see :class:`modelport.registry.model.Model`), with ``deploy`` and
    ``package``."""

    @staticmethod
    def deploy(
        workspace: native_workspace.Workspace,
        name: str,
        models: Sequence[registry_model.Model | str],
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Webservice:
        """Deploy ``models`` as web service ``name``; returns the ``Webservice`` at once.

        Follow it with ``service.wait_for_deployment(show_output=True)``. Without a target the
        service goes to the workspace's local target (processes on this machine).
        """
        return deploy(
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


class Workspace(native_workspace.Workspace):
    """A workspace (see :class:`modelport.workspace.Workspace`), with Azure ML's ``models``."""

    @property
    def models(self) -> dict[str, registry_model.Model]:
        """Latest version of every registered model, by name."""
        return {m.name: m for m in registry_model.Model.list(self, latest=True)}
