"""Which driver runs a service of a given compute type."""

from __future__ import annotations

from typing import Any

from modelport.errors import ComputeTargetException


def driver_for(compute_type: str) -> Any:
    """The driver of ``compute_type`` (``local`` today; ``kubernetes`` with the cluster target)."""
    if compute_type == "local":
        from modelport.compute.local.driver import LocalDriver

        return LocalDriver()
    raise ComputeTargetException(f"Compute type {compute_type!r} is not supported yet; use the local target.")
