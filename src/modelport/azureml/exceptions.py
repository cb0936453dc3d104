"""``azureml.exceptions``: the exception names Azure ML v1 code catches, as modelport raises them."""

from modelport.errors import (
    ComputeTargetException,
    ConfigValidationError,
    ModelNotFoundException,
    ModelportError,
    UserErrorException,
    WebserviceException,
    WorkspaceException,
)

# Azure ML's root exception class; every modelport error derives from it.
AzureMLException = ModelportError
ProjectSystemException = WorkspaceException

__all__ = [
    "AzureMLException",
    "ComputeTargetException",
    "ConfigValidationError",
    "ModelNotFoundException",
    "ProjectSystemException",
    "UserErrorException",
    "WebserviceException",
    "WorkspaceException",
]
