"""The workspace registries: models and environments, versioned per name (1, 2, 3, ...)."""

from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import Environment
from modelport.registry.model import Model

__all__ = ["CondaDependencies", "Environment", "Model"]
