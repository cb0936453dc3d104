"""Name rules of Azure ML v1, checked in one place (docs/workspaces.md, models.md and services.md)."""

from __future__ import annotations

import re

from modelport.errors import UserErrorException, WebserviceException, WorkspaceException

MODEL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$")
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{,61}[a-z0-9])?$")
COMPUTE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
WORKSPACE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,31}$")
# Environment names are free text in Azure ML; modelport only refuses what cannot be a file or
# a row key safely (path separators, NUL, leading dots, control characters).
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,254}$")
# A container image's repository path (no registry host: the registry is chosen apart) and tag,
# as the OCI distribution spec has them.
IMAGE_NAME = re.compile(r"^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
IMAGE_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Azure ML reserved these for its managed computes; an attached target may not take them.
RESERVED_COMPUTE_NAMES = ("amlcompute", "local", "containerinstance")


def _safe_path_component(value: str) -> bool:
    return value not in {".", ".."} and ".." not in value and "/" not in value and "\x00" not in value


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise ``WebserviceException``."""
    if not isinstance(name, str) or not MODEL_NAME.match(name) or not _safe_path_component(name):
        raise WebserviceException(
            f"Invalid model name {name!r}: model_name must be 1-255 characters, start with a letter or "
            "digit and contain only letters, digits, '-', '.' and '_' (no '..', '/' or NUL). "
            "Fix: choose a name such as 'iris-classifier'."
        )
    return name


def check_service_name(name: object) -> str:
    """Return ``name`` if it is a valid service name (3-32 chars, lower-case DNS-like)."""
    if not isinstance(name, str) or not (3 <= len(name) <= 32) or not SERVICE_NAME.match(name):
        raise WebserviceException(
            f"Error, provided service name is invalid. It must only consist of lowercase letters, numbers, "
            f"or dashes, start with a letter, end with a letter or number, and be between 3 and 32 "
            f"characters long. Got {name!r}."
        )
    return name


def check_key_name(name: object) -> str:
    """Return ``name`` if it can name a service's named key (a Prometheus label value too)."""
    if not isinstance(name, str) or not KEY_NAME.match(name):
        raise WebserviceException(
            f"Invalid key name {name!r}: key_name must be 1-63 characters, start with a letter or digit "
            "and contain only letters, digits, '-', '.' and '_'. Fix: choose a name such as 'team-a'."
        )
    return name


def check_workspace_name(name: object) -> str:
    """Return ``name`` if it is a valid workspace name (2-32 chars, alnum first, then alnum/-/_)."""
    if not isinstance(name, str) or not WORKSPACE_NAME.match(name):
        raise WorkspaceException(
            f"Invalid workspace name {name!r}: it must be 2-32 characters, start with a letter or digit "
            "and contain only letters, digits, '-' and '_'. Fix: choose a name such as 'my-workspace'."
        )
    return name


def check_environment_name(name: object) -> str:
    """Return ``name`` if it can name a registered environment; ``TypeError`` if not a string (as AML)."""
    if not isinstance(name, str):
        raise TypeError(f"Environment name must be a str, got {type(name).__name__}")
    if not ENVIRONMENT_NAME.match(name) or not _safe_path_component(name):
        raise UserErrorException(
            f"Invalid environment name {name!r}: use 1-255 letters, digits, '_', '-', '.' or spaces, "
            "starting with a letter, digit or '_' (no '..', '/' or NUL)."
        )
    return name


def check_compute_name(name: object) -> str:
    """Return ``name`` if it can name a compute target (3-24 letters, digits, dashes; not reserved)."""
    if name in RESERVED_COMPUTE_NAMES:
        raise UserErrorException(
            f"Compute target name {name!r} is reserved ({', '.join(RESERVED_COMPUTE_NAMES)}); choose another "
            "name."
        )
    if not isinstance(name, str) or not COMPUTE_NAME.match(name):
        raise UserErrorException(
            f"Invalid compute target name {name!r}: use 3 to 24 letters, digits and dashes, starting with a "
            "letter and ending with a letter or digit (e.g. 'prod-aks')."
        )
    return name


def namespace_problem(value: object) -> str | None:
    """Why ``value`` cannot name a Kubernetes namespace, or None; callers wrap it in their own error."""
    if isinstance(value, str) and NAMESPACE.match(value):
        return None
    return (
        f"{value!r} is not a valid namespace name: use at most 63 lowercase letters, digits and dashes, "
        "starting and ending with a letter or digit"
    )


def check_image_name(name: object) -> str:
    """Return ``name`` if it can name an image repository (``team/iris``), else ``WebserviceException``."""
    if not isinstance(name, str) or len(name) > 255 or not IMAGE_NAME.match(name):
        raise WebserviceException(
            f"Invalid image_name {name!r}: an image name is lower-case letters and digits, separated by "
            "'.', '_', '-' or '/' (at most 255 characters, no registry host or tag). "
            "Fix: choose a name such as 'team/iris-classifier'."
        )
    return name


def check_image_label(label: object) -> str:
    """Return ``label`` if it can tag an image (1-128 letters, digits, '_', '.', '-'), else raise."""
    if not isinstance(label, str) or not IMAGE_LABEL.match(label):
        raise WebserviceException(
            f"Invalid image_label {label!r}: an image label is 1-128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'. Fix: choose a label such as 'v1' or '2026-12-02'."
        )
    return label
