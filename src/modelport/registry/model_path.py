"""``Model.get_model_path`` without a workspace: Azure ML's local model-cache lookup (§1.2.2).

Kept free of database imports: scoring scripts call it inside replicas, where only the model
files are present.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelport.errors import ModelNotFoundException, WebserviceException


def models_dir() -> Path:
    """``$AML_APP_ROOT/azureml-models`` (``./azureml-models`` when the variable is unset)."""
    return Path(os.environ.get("AML_APP_ROOT", "")) / "azureml-models"


def local_model_path(model_name: str, version: int | None = None) -> str:
    """Find a model in the local cache, then in the current folder, exactly as Azure ML did."""
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise WebserviceException("version should be an int")
    root = models_dir()
    candidate_root = root / model_name
    if candidate_root.is_dir():
        if version is None:
            versions = [int(p.name) for p in candidate_root.iterdir() if p.is_dir() and p.name.isdigit()]
            chosen = max(versions) if versions else None
        else:
            chosen = version
        version_dir = candidate_root / str(chosen) if chosen is not None else None
        if version_dir is not None and version_dir.is_dir():
            entries = sorted(os.listdir(version_dir))
            if len(entries) != 1:
                raise WebserviceException(
                    f"Dir {version_dir} can contain only 1 file or folder. Found {entries}"
                )
            return str(version_dir / entries[0])
    if Path(model_name).exists():
        return model_name
    message = (
        f"Model {model_name} not found in cache at {root} or in current working directory {os.getcwd()}. "
        "For more info, set logging level to DEBUG."
    )
    if version is not None:
        raise WebserviceException(message)
    raise ModelNotFoundException(message)
