"""``azureml.core.webservice.webservice``: ``Webservice``, the base of the facade's service types.

Which type a service is follows from how it was deployed: a ``port`` in its deployment config
(``LocalWebservice.deploy_configuration``) makes it a ``LocalWebservice``; every other service is
an ``AksWebservice`` (same states, keys, tokens and front-end URI as on AKS). Each type's module
registers itself here (:func:`register_type`), as Azure ML's ``Webservice`` found its subclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelport.errors import WebserviceException
from modelport.service.webservice import Webservice as _Webservice

# Keys of AksWebservice.serialize() that have no counterpart here (no images, no endpoints yet).
_ABSENT_KEYS = ("imageId", "imageDigest", "imageDetails", "createdBy", "isDefault", "trafficPercentile")
_LIST_COMPUTE_TYPES = ("ACI", "AKSENDPOINT", "AKS", "IOT", "MIR", "LOCAL")
# Azure ML's compute type ("AKS", "LOCAL") -> how a native service becomes its facade type.
_TYPES: dict[str, Callable[[_Webservice], Any]] = {}


def register_type(compute_type: str, cast: Callable[[_Webservice], Any]) -> None:
    """Services of ``compute_type`` are handed out as ``cast(native_service)``."""
    _TYPES[compute_type] = cast


def kind_of(service: _Webservice) -> str:
    """Azure ML's compute type of a service here: ``LOCAL`` with a port, else ``AKS``."""
    return "LOCAL" if service.deployment_config.port is not None else "AKS"


def typed(service: _Webservice) -> Any:
    """The facade type of a native service object (the object itself is re-typed, nothing copied)."""
    return _TYPES[kind_of(service)](service)


class Webservice(_Webservice):
    """Azure ML's ``Webservice``: ``Webservice(ws, name)`` returns the subclass it was deployed as."""

    def __new__(cls, workspace: Any = None, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if cls is Webservice and workspace is not None and name is not None:
            return typed(_Webservice(workspace, name))
        return super().__new__(cls)

    @staticmethod
    def list(
        workspace: Any,
        compute_type: str | None = None,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        image_digest: str | None = None,
    ) -> list[Any]:
        """Services of the workspace, typed; ``compute_type`` ``AKS`` or ``LOCAL`` (``ACI``: none)."""
        kind = compute_type.upper() if compute_type is not None else None
        if kind is not None and kind not in _LIST_COMPUTE_TYPES:
            raise WebserviceException(
                f'Invalid compute type "{compute_type}". Valid options are "{",".join(_LIST_COMPUTE_TYPES)}"'
            )
        found = _Webservice.list(
            workspace, model_name=model_name, model_id=model_id, tags=tags, properties=properties
        )
        return [typed(s) for s in found if kind is None or kind_of(s) == kind]

    @staticmethod
    def deserialize(workspace: Any, payload: dict[str, Any]) -> Any:
        """The service named in ``payload``, as ``Webservice(workspace, payload['name'])`` returns it."""
        return Webservice(workspace, payload["name"])

    def serialize(self) -> dict[str, Any]:
        """Azure ML's dict form: modelport's, plus Azure's keys that have no value here (``None``)."""
        payload = {**dict.fromkeys(_ABSENT_KEYS), **super().serialize(), "versionType": None}
        payload["computeType"] = self.compute_type
        return payload

    @property
    def compute_type(self) -> str:
        """``AKS`` for services on a Kubernetes target (Azure ML's name), ``Local`` otherwise."""
        return "AKS" if self._spec.compute_type == "kubernetes" else super().compute_type

    image_id = None
    image_digest = None
    image = None
    created_by = None


__all__ = ["Webservice"]
