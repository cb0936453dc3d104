"""``azureml.core.environment``: ``Environment`` (and ``CondaDependencies``, which it re-exported)."""

from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import ContainerRegistry, Environment

__all__ = ["CondaDependencies", "ContainerRegistry", "Environment"]
