"""``Webservice.update``: validate the changes as Azure ML did, then record a new generation.

Changes that need new replicas (settings, models, code, environment) become a new generation
rolled out by the target; tags, properties and the description change in place.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from modelport.config.deployment import EffectiveDeploymentConfig, check_settings_effect
from modelport.config.rules import DEPLOYMENT_RULES, failed_rules
from modelport.errors import ConfigValidationError, WebserviceException
from modelport.registry.tags import add_properties
from modelport.service import store as service_store
from modelport.service.deploy import resolve_environment, resolve_models, snapshot_source
from modelport.service.driver import driver_for
from modelport.service.spec import ServiceSpec
from modelport.workspace.blobs import discard_unreferenced_blobs

if TYPE_CHECKING:
    from modelport.service.webservice import Webservice

UPDATE_PREFIX = "Error, "
# The deployment knobs update() may change (keys: regen_key; the target: never), in AML's order.
UPDATABLE_KNOBS = (
    "autoscale_enabled",
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
    "collect_model_data",
    "auth_enabled",
    "cpu_cores",
    "memory_gb",
    "enable_app_insights",
    "scoring_timeout_ms",
    "replica_max_concurrent_requests",
    "max_request_wait_time",
    "num_replicas",
    "gpu_cores",
    "period_seconds",
    "initial_delay_seconds",
    "timeout_seconds",
    "success_threshold",
    "failure_threshold",
    "namespace",
    "token_auth_enabled",
    "cpu_cores_limit",
    "memory_gb_limit",
)


def _validated_config(current: EffectiveDeploymentConfig, given: dict[str, Any]) -> EffectiveDeploymentConfig:
    """Apply ``given`` to ``current`` with Azure ML's update rules (every failure at once)."""
    fallback = current.model_dump()
    errors = [UPDATE_PREFIX + message for message in failed_rules(DEPLOYMENT_RULES, given, fallback)]
    # Switching between key and token auth needs both flags in one call, as Azure ML required.
    if given.get("token_auth_enabled") and current.auth_enabled and given.get("auth_enabled") is not False:
        errors.append(
            UPDATE_PREFIX + "key auth is on: pass auth_enabled=False together with token_auth_enabled=True."
        )
    if (
        given.get("auth_enabled")
        and current.token_auth_enabled
        and given.get("token_auth_enabled") is not False
    ):
        errors.append(
            UPDATE_PREFIX + "token auth is on: pass token_auth_enabled=False together with auth_enabled=True."
        )
    if errors:
        raise ConfigValidationError(list(dict.fromkeys(errors)))
    merged = {**fallback, **given}
    if given.get("autoscale_enabled"):
        merged["num_replicas"] = None
    elif given.get("num_replicas"):
        merged["autoscale_enabled"] = False
    try:
        return EffectiveDeploymentConfig(**merged)
    except ValidationError as exc:
        problems = [
            f"{UPDATE_PREFIX}{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})"
            for e in exc.errors()
        ]
        raise ConfigValidationError(problems) from exc


def plan_update(
    service: Webservice,
    knobs: dict[str, Any],
    *,
    tags: dict[str, str] | None,
    properties: dict[str, str] | None,
    description: str | None,
    models: list[Any] | None,
    inference_config: Any,
) -> int | None:
    """Validate and store the update; return the new generation (None when nothing needs new replicas)."""
    given = {k: v for k, v in knobs.items() if v is not None}
    nothing = not given and models is None and inference_config is None
    if nothing and tags is None and properties is None and description is None:
        raise WebserviceException("No parameters provided to update.")
    if models is not None and inference_config is None:
        raise WebserviceException(
            'Error, both "models" and "inference_config" inputs must be provided in order to update the '
            "models."
        )
    workspace = service.workspace
    spec = service._spec
    changes: dict[str, Any] = {}
    if tags is not None:
        changes["tags"] = dict(tags)
    if properties is not None:
        changes["properties"] = add_properties(dict(spec.properties), dict(properties))
    if description is not None:
        changes["description"] = description
    if nothing:
        service_store.replace_spec(
            workspace, spec.model_copy(update=changes), "Tags, properties or description updated"
        )
        return None
    changes["deployment"] = _validated_config(spec.deployment, given)
    check_settings_effect(given, "update()")
    _warn_unchecked_named_keys(spec.model_copy(update={"deployment": changes["deployment"]}))
    driver_for(spec.compute_type, spec.compute_target).check(workspace, changes["deployment"])
    created: list[str] = []
    if inference_config is not None:
        if models is not None:
            changes["models"] = resolve_models(workspace, models)
        changes["environment"] = resolve_environment(workspace, service.name, inference_config)
        changes["source"], files, created = snapshot_source(workspace, inference_config)
    else:
        files = service_store.source_file_list(workspace, service.name, service.generation)
    try:
        generation = service_store.write_service(
            workspace, spec.model_copy(update=changes), files, create=False, message="Update requested"
        )
    except BaseException:
        discard_unreferenced_blobs(workspace, created)
        raise
    driver_for(spec.compute_type, spec.compute_target).submit(workspace, service.name)
    return generation


def _warn_unchecked_named_keys(spec: ServiceSpec) -> None:
    """Say so when an update turns key auth off while named keys exist: they are kept, not checked."""
    if spec.named_keys and spec.auth_mode != "key":
        names = ", ".join(key.name for key in spec.named_keys)
        warnings.warn(
            f"update(): service {spec.name} keeps its named keys ({names}) but they are not accepted "
            f"while it uses {spec.auth_mode} auth; they work again with key auth. Remove them with "
            "remove_key() (CLI: modelport service keys remove).",
            UserWarning,
            stacklevel=3,
        )
