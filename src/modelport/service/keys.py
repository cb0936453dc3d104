"""A service's keys and tokens: a regenerated key, an access token, the header a caller sends.

Keys live in the spec (``ServiceSpec.deployment``); tokens are signed with the spec's secret by
:mod:`modelport.frontend.auth`, which the front end verifies them with.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from modelport.errors import WebserviceException
from modelport.service.spec import ServiceSpec

if TYPE_CHECKING:
    from modelport.frontend.auth import Token


def with_new_key(spec: ServiceSpec, key: str, set_key: str | None) -> tuple[ServiceSpec, str]:
    """``spec`` with the ``Primary`` or ``Secondary`` key replaced by ``set_key`` (default: generated).

    Returns the new spec and which key changed (``"Primary"`` or ``"Secondary"``).
    """
    kind = str(key).capitalize() if key is not None else ""
    if kind not in ("Primary", "Secondary"):
        raise WebserviceException(
            f"Error, invalid value provided for key: {key}.\nValid options are: Primary, Secondary"
        )
    value = set_key or secrets.token_urlsafe(24)
    field = "primary_key" if kind == "Primary" else "secondary_key"
    deployment = spec.deployment.model_copy(update={field: value})
    return spec.model_copy(update={"deployment": deployment}), kind


def access_token(spec: ServiceSpec) -> Token:
    """A signed token for the service (token auth only)."""
    # Imported here: the signing library is loaded only by the commands that issue tokens.
    from modelport.frontend.auth import issue_token

    if spec.auth_mode != "token":
        raise WebserviceException(
            f"Service {spec.name} does not use token auth. Fix: deploy or update it with "
            "token_auth_enabled=True (tokenAuthEnabled in deploymentconfig.json), or use get_keys()."
        )
    return issue_token(bytes.fromhex(spec.token_secret), spec.name)


def authorization(spec: ServiceSpec) -> dict[str, str]:
    """The ``Authorization`` header a caller of the service sends (none without auth)."""
    mode = spec.auth_mode
    if mode == "key":
        return {"Authorization": f"Bearer {spec.deployment.primary_key}"}
    if mode == "token":
        return {"Authorization": f"Bearer {access_token(spec).access_token}"}
    return {}
