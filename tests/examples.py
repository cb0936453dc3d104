"""Azure ML's documented examples that several test modules use (read-only: copy before changing)."""

from __future__ import annotations

from typing import Any

# The environment of Azure ML's inferenceconfig.json example, as users have it.
ENVIRONMENT_EXAMPLE: dict[str, Any] = {
    "name": "my-deploy-env",
    "python": {
        "userManagedDependencies": False,
        "condaDependencies": {
            "channels": ["conda-forge"],
            "dependencies": [
                "python=3.8",
                {"pip": ["azureml-defaults", "scikit-learn==0.24.2", "inference-schema[numpy-support]"]},
            ],
        },
    },
    "docker": {"baseImage": "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04"},
    "environmentVariables": {"MY_VAR": "1"},
}
