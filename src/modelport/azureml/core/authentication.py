"""``azureml.core.authentication``: Azure's credential classes, accepted so that notebooks import and
construct them; modelport workspaces are opened from their config, so the credentials are unused
(passing one as ``auth=`` gives the usual "ignored" warning)."""

from __future__ import annotations

from typing import Any


class AbstractAuthentication:
    """Any Azure credential; holds its arguments and is otherwise unused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class InteractiveLoginAuthentication(AbstractAuthentication):
    """Azure's interactive login."""


class ServicePrincipalAuthentication(AbstractAuthentication):
    """Azure's service principal credential."""


class AzureCliAuthentication(AbstractAuthentication):
    """Azure CLI login."""


class MsiAuthentication(AbstractAuthentication):
    """Managed identity."""


__all__ = [
    "AbstractAuthentication",
    "AzureCliAuthentication",
    "InteractiveLoginAuthentication",
    "MsiAuthentication",
    "ServicePrincipalAuthentication",
]
