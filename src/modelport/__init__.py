"""modelport: deploy registered machine-learning models as web services.

The main classes are importable from the top level (``from modelport import Workspace, Model``);
they are loaded on first use so that ``modelport serve`` and ``--help`` start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Workspace": "modelport.sdk",
    "Model": "modelport.sdk",
    "Environment": "modelport.registry.environment",
    "CondaDependencies": "modelport.registry.conda",
    "InferenceConfig": "modelport.config",
    "load_inference_config": "modelport.config",
    "load_deployment_config": "modelport.config",
    "kubernetes_deploy_configuration": "modelport.config",
    "local_deploy_configuration": "modelport.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
