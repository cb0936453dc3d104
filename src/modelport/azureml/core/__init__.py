"""``azureml.core``: replace the import prefix ``azureml.core`` by ``modelport.azureml.core``.

Submodules mirror Azure ML's: ``model``, ``webservice``, ``compute``, ``compute_target``,
``environment``, ``conda_dependencies``, ``authentication``.
"""

from modelport.azureml.core.compute import ComputeTarget
from modelport.azureml.core.environment import Environment
from modelport.azureml.core.model import InferenceConfig, Model
from modelport.azureml.core.webservice import Webservice
from modelport.azureml.core.workspace import Workspace

__all__ = ["ComputeTarget", "Environment", "InferenceConfig", "Model", "Webservice", "Workspace"]
