"""``azureml.core.Workspace``: Azure's (subscription, resource group, name) open the local workspace of
that name; Azure-only arguments are accepted and ignored with one warning naming them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelport.azureml._compat import warn_ignored
from modelport.errors import WorkspaceException
from modelport.workspace import Workspace as _Workspace
from modelport.workspace import config as cfg


def _azure_ids(config_path: Path | None) -> tuple[str | None, str | None]:
    """(subscription_id, resource_group) named by an Azure ML config file, when it names them."""
    if config_path is None:
        return None, None
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, None
    scope = data.get("Scope") if isinstance(data, dict) else None
    if isinstance(scope, str) and len(scope.split("/")) >= 9:
        parts = scope.split("/")
        return parts[2], parts[4]
    if isinstance(data, dict):
        return data.get("subscription_id"), data.get("resource_group")
    return None, None


class Workspace(_Workspace):
    """Azure ML's ``Workspace``: ``Workspace(subscription_id, resource_group, workspace_name)``.

    Opens the local workspace named ``workspace_name`` (created with ``Workspace.create`` or
    ``modelport workspace create``); the subscription and resource group are kept as attributes.
    """

    subscription_id: str | None = None
    resource_group: str | None = None
    sku = "basic"

    def __init__(
        self,
        subscription_id: str | None,
        resource_group: str | None,
        workspace_name: str,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
    ) -> None:
        warn_ignored(
            "Workspace()",
            {"auth": auth, "sku": sku, "tags": tags, "_cloud": _cloud},
            {"sku": "basic", "_cloud": "AzureCloud"},
        )
        location = cfg.lookup_index(workspace_name)
        if location is None:
            raise WorkspaceException(
                f"Workspace {workspace_name!r} not found on this machine (subscription {subscription_id}, "
                f"resource group {resource_group}). Fix: Workspace.create({workspace_name!r}, exist_ok=True) "
                f"or `modelport workspace create {workspace_name}`."
            )
        super().__init__(location)
        self.subscription_id = subscription_id
        self.resource_group = resource_group

    @classmethod
    def _adopt(
        cls, native: _Workspace, subscription_id: str | None = None, resource_group: str | None = None
    ) -> Workspace:
        # The native classmethods build modelport Workspaces; this one only adds Azure's attributes.
        native.__class__ = cls
        adopted: Workspace = native  # type: ignore[assignment]
        adopted.subscription_id = subscription_id
        adopted.resource_group = resource_group
        return adopted

    @classmethod
    def from_config(  # type: ignore[override]
        cls,
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """Open the workspace named by the config found from ``path`` upward (Azure ML's search order).

        An Azure ``config.json`` (``subscription_id``/``resource_group``/``workspace_name`` or
        ``Scope``) opens the local workspace of that name.
        """
        warn_ignored("Workspace.from_config()", {"auth": auth})
        found = cfg.find_config(path, _file_name)
        native = _Workspace.from_config(found)
        return cls._adopt(native, *_azure_ids(found))

    @classmethod
    def get(  # type: ignore[override]
        cls,
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
    ) -> Workspace:
        """Open the local workspace ``name``."""
        warn_ignored(
            "Workspace.get()",
            {"auth": auth, "location": location, "cloud": cloud, "id": id},
            {"cloud": "AzureCloud"},
        )
        return cls._adopt(_Workspace.get(name), subscription_id, resource_group)

    @classmethod
    def create(  # type: ignore[override]
        cls,
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        create_resource_group: bool = True,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        friendly_name: str | None = None,
        storage_account: str | None = None,
        key_vault: str | None = None,
        app_insights: str | None = None,
        container_registry: str | None = None,
        adb_workspace: str | None = None,
        primary_user_assigned_identity: str | None = None,
        cmk_keyvault: str | None = None,
        resource_cmk_uri: str | None = None,
        hbi_workspace: bool = False,
        default_cpu_compute_target: Any = None,
        default_gpu_compute_target: Any = None,
        private_endpoint_config: Any = None,
        private_endpoint_auto_approval: bool = True,
        exist_ok: bool = False,
        show_output: bool = True,
        user_assigned_identity_for_cmk_encryption: str | None = None,
        system_datastores_auth_mode: str = "accessKey",
        v1_legacy_mode: bool | None = None,
    ) -> Workspace:
        """Create the local workspace ``name`` (``exist_ok=True``: open it if it exists).

        ``location``, ``tags`` and ``friendly_name`` (as the description) are recorded; the other
        Azure resources have no meaning here and are ignored with one warning.
        """
        given = dict(locals())
        ignored = {
            key: given[key]
            for key in (
                "auth",
                "create_resource_group",
                "sku",
                "storage_account",
                "key_vault",
                "app_insights",
                "container_registry",
                "adb_workspace",
                "primary_user_assigned_identity",
                "cmk_keyvault",
                "resource_cmk_uri",
                "hbi_workspace",
                "default_cpu_compute_target",
                "default_gpu_compute_target",
                "private_endpoint_config",
                "private_endpoint_auto_approval",
                "user_assigned_identity_for_cmk_encryption",
                "system_datastores_auth_mode",
                "v1_legacy_mode",
            )
        }
        warn_ignored(
            "Workspace.create()",
            ignored,
            {
                "create_resource_group": True,
                "sku": "basic",
                "hbi_workspace": False,
                "private_endpoint_auto_approval": True,
                "system_datastores_auth_mode": "accessKey",
            },
        )
        if exist_ok and cfg.lookup_index(name) is not None:
            return cls._adopt(_Workspace.get(name), subscription_id, resource_group)
        native = _Workspace.create(
            name, exist_ok=exist_ok, tags=tags, location=location, description=friendly_name
        )
        if show_output:
            print(f"Deployed workspace {name} (local, {native.metadata_url})")
        return cls._adopt(native, subscription_id, resource_group)

    def write_config(self, path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> Path:
        """Write ``<path>/.azureml/<file_name or config.json>``: the modelport config of this workspace
        plus its Azure ids, so that ``Workspace.from_config()`` finds it wherever the notebook runs."""
        target = (Path(path or Path.cwd()) / ".azureml" / (file_name or "config.json")).resolve()
        location = cfg.WorkspaceLocation(
            self.name,
            self.store_location.metadata_url,
            self.artifact_url,
            self.store_location.storage_options,
        )
        payload = {
            **cfg.config_payload(location),
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return target

    # ------------------------------------------------------------------ Azure ML's dict properties
    @property
    def models(self) -> dict[str, Any]:
        """Latest version of every registered model, by name (typed as this facade's ``Model``)."""
        from modelport.azureml.core.model import Model

        return {model.name: model for model in Model.list(self, latest=True)}

    @property
    def webservices(self) -> dict[str, Any]:
        """Deployed services by name (typed as ``Webservice(ws, name)`` types them)."""
        from modelport.azureml.core.webservice import Webservice

        return {service.name: service for service in Webservice.list(self)}

    @property
    def compute_targets(self) -> dict[str, Any]:
        """Attached compute targets by name, typed as ``ComputeTarget(ws, name)`` types them."""
        from modelport.azureml.core.compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def environments(self) -> dict[str, Any]:
        """Registered environments by name (latest version)."""
        from modelport.azureml.core.environment import Environment

        return dict(Environment.list(self))

    def get_details(self) -> dict[str, Any]:
        """The workspace as a dict, with Azure's ids."""
        return {
            **super().get_details(),
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
        }
