"""``Model.get_model_path`` inside a replica: find a model in the local model-directory layout.

Follows Azure ML v1 (docs/scoring.md, "Entry scripts"): models live at
``<root>/<name>/<version>/<one file or folder>``; without a version the highest integer version
wins; a version folder must hold exactly one entry; the last resort is ``./<name>``. The roots
searched are ``$AML_APP_ROOT/azureml-models`` (Azure's cache), the ``AZUREML_MODEL_DIR`` root for
several models, and the root above ``AZUREML_MODEL_DIR`` when it points at one model's version.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelport.errors import ModelNotFoundException, WebserviceException

# Where a replica's models live under its app root (Azure ML's cache folder): <name>/<version>/.
MODELS_DIR = "azureml-models"


def model_roots(environ: dict[str, str] | None = None) -> list[Path]:
    """The folders that may hold ``<name>/<version>/`` model trees, in search order."""
    env = os.environ if environ is None else environ
    roots = [Path(env.get("AML_APP_ROOT", "")) / MODELS_DIR]
    model_dir = env.get("AZUREML_MODEL_DIR")
    if model_dir:
        path = Path(model_dir)
        # A single-model value ends with the version folder: <root>/<name>/<version>.
        roots.append(path.parent.parent if path.name.isdigit() else path)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def get_model_path(model_name: str, version: int | None = None, _workspace: object = None) -> str:
    """Return the local path of a deployed model's file or folder.

    ``version`` must be an int or ``None`` (the highest version present). Raises
    ``ModelNotFoundException`` naming every place searched when the model is not there.
    """
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise WebserviceException(f"version should be an int, got {version!r} ({type(version).__name__})")
    roots = model_roots()
    for root in roots:
        name_dir = root / model_name
        if not name_dir.is_dir():
            continue
        chosen = version if version is not None else _highest_version(name_dir)
        if chosen is None:
            continue
        version_dir = name_dir / str(chosen)
        if not version_dir.is_dir():
            continue
        entries = sorted(os.listdir(version_dir))
        if len(entries) != 1:
            raise WebserviceException(
                f"Dir {version_dir} can contain only 1 file or folder. Found {entries}; "
                "register the model as one file or one folder."
            )
        return str(version_dir / entries[0])
    if Path(model_name).exists():
        return model_name
    searched = ", ".join(str(root) for root in roots)
    raise ModelNotFoundException(
        f"ModelNotFound: Model {model_name}{'' if version is None else f':{version}'} not found in cache "
        f"at [{searched}] or in current working directory {os.getcwd()}. Check the registered model "
        "name and version, and AZUREML_MODEL_DIR."
    )


def _highest_version(name_dir: Path) -> int | None:
    versions = [int(entry.name) for entry in name_dir.iterdir() if entry.is_dir() and entry.name.isdigit()]
    return max(versions) if versions else None
