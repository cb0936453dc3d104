"""Exceptions raised by modelport.

The class names follow Azure ML v1 (``azureml.exceptions``) so that code which catches
``WebserviceException`` or string-matches ``ModelNotFound`` keeps working through the
compatibility facade; each carries a one-line ``message`` that names the field, the value and
the fix, which is what the CLI prints.
"""

from __future__ import annotations


class ModelportError(Exception):
    """Base class of every error modelport raises on purpose (as opposed to a bug)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class UserErrorException(ModelportError):
    """Bad input from the user: a value, a name, a path or a combination of arguments."""


class WorkspaceException(ModelportError):
    """A workspace could not be created, found or opened."""


class WebserviceException(ModelportError):
    """Model, service and deployment-configuration errors (Azure ML's catch-all name)."""


class ModelNotFoundException(WebserviceException):
    """A model name/version does not exist (message starts with ``ModelNotFound``)."""


class EnvironmentException(UserErrorException):
    """An environment could not be defined, registered or found."""


class ComputeTargetException(ModelportError):
    """Compute target creation, attachment or configuration errors."""


class TemporaryTargetError(ComputeTargetException):
    """A target could not carry out a step now (unreachable, throttled, over a quota, a server
    error); the same step may succeed later, so whoever observes the service retries it with back-off."""


class PermanentTargetError(ComputeTargetException):
    """A target refused a step for a reason retrying cannot fix (an invalid object, a conflict); the
    service's deployment fails with it, and the message names the fix."""


class ConfigValidationError(WebserviceException):
    """A configuration failed one or more rules; ``errors`` lists every failed rule at once."""

    def __init__(self, errors: list[str], *, header: str | None = None) -> None:
        self.errors = list(errors)
        body = "\n".join(self.errors)
        super().__init__(f"{header}\n{body}" if header else body)


class ArtifactStoreError(ModelportError):
    """The artifact store failed (I/O, permissions, network); nothing half-written was kept."""
