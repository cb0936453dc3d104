"""``azureml.core.conda_dependencies``: ``CondaDependencies``."""

from modelport.registry.conda import CondaDependencies

__all__ = ["CondaDependencies"]
