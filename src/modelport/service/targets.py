"""Which driver runs a service of a given compute type and target."""

from __future__ import annotations

from typing import Any

from modelport.errors import ComputeTargetException
from modelport.service.spec import LOCAL_TARGET


def driver_for(compute_type: str, target: str = LOCAL_TARGET) -> Any:
    """The driver of ``compute_type`` for the compute target named ``target``."""
    if compute_type == "local":
        from modelport.compute.local.driver import LocalDriver

        return LocalDriver()
    if compute_type == "kubernetes":
        from modelport.compute.kubernetes.driver import KubernetesDriver

        return KubernetesDriver(target)
    raise ComputeTargetException(f"Compute type {compute_type!r} is not supported; use local or kubernetes.")
