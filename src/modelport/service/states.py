"""Service states and the error object, as Azure ML v1 reported them (docs/services.md, "States")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TRANSITIONING = "Transitioning"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
UNSCHEDULABLE = "Unschedulable"
FAILED = "Failed"
DELETING = "Deleting"
STATES = (TRANSITIONING, HEALTHY, UNHEALTHY, UNSCHEDULABLE, FAILED, DELETING)

# Typed failure codes; each error object names one, with the evidence in ``details``.
ENTRY_SCRIPT_INIT_FAILED = "EntryScriptInitFailed"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
OOM_KILLED = "OOMKilled"
ENVIRONMENT_BUILD_FAILED = "EnvironmentBuildFailed"
DEPLOYMENT_TIMED_OUT = "DeploymentTimedOut"
DEPLOYMENT_FAILED = "DeploymentFailed"
UNSCHEDULABLE_CODE = "Unschedulable"


class ErrorDetail(BaseModel):
    """One piece of evidence: a code and a message (a traceback, log lines, a count)."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class ServiceError(BaseModel):
    """Azure ML's error object: ``{code, statusCode, message, details[]}``, plus the fix."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    code: str
    status_code: int = Field(400, alias="statusCode")
    message: str
    details: tuple[ErrorDetail, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The camelCase JSON form Azure ML clients parse."""
        return {
            "code": self.code,
            "statusCode": self.status_code,
            "message": self.message,
            "details": [{"code": d.code, "message": d.message} for d in self.details],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ServiceError | None:
        """Parse the stored JSON form (``None`` stays ``None``)."""
        return cls.model_validate(data) if data else None
