"""Reading ``deploymentconfig.json``/YAML: ``computeType`` dispatch, file keys, ignored and unknown keys.

Azure ML's CLI ignored unknown keys silently; modelport reads the same keys but warns (with a
``ConfigWarning``) about every key it does not use, naming it, so that a typo such as
``numReplica`` does not go unnoticed. ``aci`` and ``aksendpoint`` files are accepted and read as
a Kubernetes deployment, with a warning saying what was mapped and what was dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.config.deployment import (
    EFFECTIVE_DEFAULTS,
    DeploymentConfig,
    KubernetesDeploymentConfig,
    LocalDeploymentConfig,
    validate_as,
)
from modelport.config.files import read_config_file, type_error_message, warn, warn_unknown_key
from modelport.config.rules import DEPLOY_PREFIX
from modelport.errors import ConfigValidationError, WebserviceException

FLAG = "--deploy-config-file"

_NOT_FROM_FILES = "is not read from a deployment config file (as in Azure ML); pass it to the deploy command"
_IGNORED_EVERYWHERE: dict[str, str | None] = {
    "containerResourceRequirements.gpu": "is ignored (as in Azure ML); set the top-level gpuCores instead",
    "tags": _NOT_FROM_FILES,
    "properties": _NOT_FROM_FILES,
    "description": _NOT_FROM_FILES,
}

# The parameters an ACI file shares with AKS (same file keys); everything else ACI had is dropped.
_ACI_PARAMETERS = (
    "cpu_cores",
    "memory_gb",
    "auth_enabled",
    "enable_app_insights",
    "primary_key",
    "secondary_key",
)
_ACI_DROPPED = (
    "location",
    "sslEnabled",
    "sslCertificate",
    "sslKey",
    "cname",
    "dnsNameLabel",
    "vaultBaseUrl",
    "keyName",
    "keyVersion",
    "vnetName",
    "subnetName",
)


@dataclass(frozen=True)
class _Layout:
    """How one ``computeType`` is read: which keys map to which parameters, and what is ignored."""

    config_class: type[DeploymentConfig]
    keys: Mapping[str, str]  # dotted file key -> parameter
    # dotted file key -> why it is ignored (None: ignored silently here, the summary names it)
    ignored: Mapping[str, str | None]
    # parameters the layout sets itself unless the file sets them
    preset: Mapping[str, Any] = field(default_factory=dict)
    # the warning that says what a foreign compute type was read as: (source, values, keys read, dropped)
    summary: Callable[[str, Mapping[str, Any], set[str], list[str]], str] | None = None


def _keys_of(config_class: type[DeploymentConfig]) -> dict[str, str]:
    return {key: name for name, key in config_class.file_keys().items()}


def _aci_summary(source: str, values: Mapping[str, Any], from_file: set[str], dropped: list[str]) -> str:
    def shown(name: str) -> str:
        return f"{values[name]}" if name in values else f"{EFFECTIVE_DEFAULTS[name]} (default)"

    keys = (
        "from keys.primaryKey/secondaryKey" if from_file & {"primary_key", "secondary_key"} else "generated"
    )
    auth = "from authEnabled" if "auth_enabled" in from_file else "ACI's default"
    return (
        f"{source}: computeType 'aci' read as a single-replica Kubernetes deployment: num_replicas=1, "
        f"autoscale_enabled=False, cpu_cores={shown('cpu_cores')}, memory_gb={shown('memory_gb')}, "
        f"auth_enabled={values['auth_enabled']} ({auth}), keys {keys}. "
        f"Ignored ACI keys: {', '.join(dropped) if dropped else 'none'}."
    )


def _aksendpoint_summary(
    source: str, values: Mapping[str, Any], from_file: set[str], dropped: list[str]
) -> str:
    return (
        f"{source}: computeType 'aksendpoint' read as a single Kubernetes ('aks') deployment; endpoint "
        "versions and traffic split (versionName, trafficPercentile) are not supported yet."
    )


_AKS = _Layout(KubernetesDeploymentConfig, _keys_of(KubernetesDeploymentConfig), _IGNORED_EVERYWHERE)
_LAYOUTS: dict[str, _Layout] = {
    "aks": _AKS,
    "kubernetes": _AKS,
    "local": _Layout(LocalDeploymentConfig, _keys_of(LocalDeploymentConfig), _IGNORED_EVERYWHERE),
    "aksendpoint": _Layout(
        KubernetesDeploymentConfig,
        {key: name for key, name in _AKS.keys.items() if name != "compute_target_name"},
        {
            **_IGNORED_EVERYWHERE,
            "versionName": None,
            "trafficPercentile": None,
            "computeTargetName": "is not read for aksendpoint (as in Azure ML); pass the target to deploy",
        },
        summary=_aksendpoint_summary,
    ),
    "aci": _Layout(
        KubernetesDeploymentConfig,
        {key: name for key, name in _AKS.keys.items() if name in _ACI_PARAMETERS},
        dict.fromkeys(_ACI_DROPPED),
        preset={"num_replicas": 1, "autoscale_enabled": False, "auth_enabled": False},
        summary=_aci_summary,
    ),
}


def _flatten(content: Mapping[str, Any], layout: _Layout) -> tuple[dict[str, Any], list[str]]:
    """Return ``{dotted key: value}`` for every leaf (sections nest one level deep), and shape errors."""
    sections = {key.split(".")[0] for key in (*layout.keys, *layout.ignored) if "." in key}
    leaves: dict[str, Any] = {}
    errors = []
    for key, value in content.items():
        key = str(key)
        if key == "computeType":
            continue
        if key not in sections:
            leaves[key] = value
        elif isinstance(value, Mapping):
            leaves.update({f"{key}.{sub}": subvalue for sub, subvalue in value.items()})
        elif value is not None:
            errors.append(DEPLOY_PREFIX + type_error_message(key, value, "an object"))
    return leaves, errors


def deployment_config_from_dict(content: Mapping[str, Any], *, source: str = FLAG) -> DeploymentConfig:
    """Build a deployment configuration from the parsed content of a ``deploymentconfig`` file.

    ``source`` names the file in warnings and errors. Raises ``WebserviceException`` for a
    missing or unknown ``computeType`` and ``ConfigValidationError`` listing every bad value.
    """
    compute_type = content.get("computeType")
    if compute_type is None:
        raise WebserviceException(f"Need to specify computeType in {FLAG}")
    layout = _LAYOUTS.get(str(compute_type).lower())
    if layout is None:
        raise WebserviceException(f"unknown deployment type: {compute_type}")

    leaves, errors = _flatten(content, layout)
    values: dict[str, Any] = dict(layout.preset)
    labels: dict[str, str] = {}
    dropped = []
    for key, value in leaves.items():
        if key in layout.keys:
            # null in a file means "not given", as Azure ML's dict.get() saw it.
            if value is not None:
                values[layout.keys[key]] = value
                labels[layout.keys[key]] = key
        elif key in layout.ignored:
            dropped.append(key)
            reason = layout.ignored[key]
            if reason is not None:
                warn(f"{source}: {key} {reason}.")
        else:
            warn_unknown_key(source, key, [*layout.keys, *layout.ignored])
    if layout.summary is not None:
        warn(layout.summary(source, values, set(labels), dropped))

    try:
        config = validate_as(layout.config_class, values, labels)
    except ConfigValidationError as exc:
        errors += exc.errors
    if errors:
        raise ConfigValidationError(errors, header=f"Error parsing {FLAG} {source}:")
    return config


def load_deployment_config(
    path: str | os.PathLike[str],
) -> DeploymentConfig:
    """Read a ``deploymentconfig.json`` or YAML file.

    Returns a ``KubernetesDeploymentConfig`` or a ``LocalDeploymentConfig``, validated.
    """
    return deployment_config_from_dict(read_config_file(path, what=FLAG), source=str(path))
