"""Which services ``Webservice.list`` returns: Azure ML's filters over the stored desired states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.errors import WebserviceException
from modelport.registry.tags import matches_filters, normalise_filters
from modelport.service import store as service_store
from modelport.service.driver import TargetDriver, driver_for

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Compute types as Azure ML's Webservice.list accepted them, mapped to modelport's targets.
_COMPUTE_TYPE_ALIASES = {"LOCAL": "local", "KUBERNETES": "kubernetes", "AKS": "kubernetes"}


def matching_services(
    workspace: Workspace,
    compute_type: str | None,
    model_name: str | None,
    model_id: str | None,
    tags: list[Any] | None,
    properties: list[Any] | None,
) -> list[tuple[service_store.ServiceRecord, TargetDriver]]:
    """The records of the services that pass every filter, by name, each with its target's driver.

    Services on one target share its driver: a cluster's is a connection (kubeconfig).
    """
    kind = None
    if compute_type is not None:
        kind = _COMPUTE_TYPE_ALIASES.get(compute_type.upper())
        if kind is None:
            raise WebserviceException(
                f'Invalid compute type "{compute_type}". Valid options are "LOCAL,KUBERNETES,AKS"'
            )
    tag_filters = normalise_filters(tags, "tags")
    property_filters = normalise_filters(properties, "properties")
    result = []
    drivers: dict[tuple[str, str], TargetDriver] = {}
    for record in service_store.list_services(workspace, kind):
        spec = record.spec
        if model_name is not None and model_name not in {m.name for m in spec.models}:
            continue
        if model_id is not None and model_id not in {m.id for m in spec.models}:
            continue
        if not (
            matches_filters(spec.tags, tag_filters) and matches_filters(spec.properties, property_filters)
        ):
            continue
        target = (spec.compute_type, spec.compute_target)
        if target not in drivers:
            drivers[target] = driver_for(*target)
        result.append((record, drivers[target]))
    return result
