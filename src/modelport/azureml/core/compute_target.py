"""``azureml.core.compute_target``: ``ComputeTargetException``."""

from modelport.errors import ComputeTargetException

__all__ = ["ComputeTargetException"]
