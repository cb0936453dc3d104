"""Inference and deployment configurations: Python API, file loaders and Azure ML v1's rules."""

from __future__ import annotations

from modelport.config.deployment import (
    AksServiceDeploymentConfiguration,
    DeploymentConfig,
    EffectiveDeploymentConfig,
    KubernetesDeploymentConfig,
    LocalDeploymentConfig,
    kubernetes_deploy_configuration,
    local_deploy_configuration,
)
from modelport.config.deployment_file import deployment_config_from_dict, load_deployment_config
from modelport.config.files import ConfigFileError, ConfigWarning, read_config_file
from modelport.config.inference import InferenceConfig
from modelport.config.inference_file import inference_config_from_dict, load_inference_config

__all__ = [
    "AksServiceDeploymentConfiguration",
    "ConfigFileError",
    "ConfigWarning",
    "DeploymentConfig",
    "EffectiveDeploymentConfig",
    "InferenceConfig",
    "KubernetesDeploymentConfig",
    "LocalDeploymentConfig",
    "deployment_config_from_dict",
    "inference_config_from_dict",
    "kubernetes_deploy_configuration",
    "load_deployment_config",
    "load_inference_config",
    "local_deploy_configuration",
    "read_config_file",
]
