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
from modelport.service.package import ModelPackage, package
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

    @staticmethod
    def package(
        workspace: native_workspace.Workspace,
        models: Sequence[registry_model.Model | str],
        inference_config: InferenceConfig | None = None,
        generate_dockerfile: bool = False,
        image_name: str | None = None,
        image_label: str | None = None,
        *,
        compute_target: str | None = None,
    ) -> ModelPackage:
        """Package ``models`` with the inference config's source and environment as a serving image.

        With ``generate_dockerfile=True``, ``package.save(DIR)`` writes a context that ``docker
        build`` turns into the image; else the image is built here and pushed to the registry of
        ``compute_target`` (a Kubernetes target attached with a registry; docs/models.md,
        "Packaging a model").
        """
        return package(
            workspace,
            models,
            inference_config,
            generate_dockerfile,
            image_name,
            image_label,
            compute_target=compute_target,
        )


class Workspace(native_workspace.Workspace):
    """A workspace (see :class:`modelport.workspace.Workspace`), with Azure ML's ``models``."""

    @property
    def models(self) -> dict[str, registry_model.Model]:
        """Latest version of every registered model, by name."""
        return {m.name: m for m in registry_model.Model.list(self, latest=True)}
