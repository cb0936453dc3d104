"""What one generation of a service needs from the workspace to become Kubernetes objects.

The models' and source files (with their blob digests), the artifact store as pods reach it
(credentials moved into a Secret, never into the plan), the image, and the namespace.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.compute.kubernetes.build_context import AZUREML_IMAGES
from modelport.compute.kubernetes.envplacement import (
    PACKAGE_INDEX_SECRET,
    REGISTRY_SECRET,
    NodeCache,
    cached_environment,
    package_index_secret,
)
from modelport.compute.kubernetes.fetch_plan import (
    ARTIFACT_CREDENTIALS_SECRET,
    INLINE_SOURCE_LIMIT,
    ArtifactAccess,
    FetchFile,
    check_artifact_url,
)
from modelport.compute.kubernetes.manifests import ServiceInputs
from modelport.compute.kubernetes.objects import Manifest, pull_secret, shared_secret
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.registry.model import Model
from modelport.service import store as service_store
from modelport.service.replica_contract import model_path
from modelport.service.spec import ServiceSpec
from modelport.workspace.artifacts import expand_environment_references
from modelport.workspace.workspace import SECRET_STORAGE_OPTIONS

if TYPE_CHECKING:
    from modelport.workspace import Workspace

_ENV_SAFE = re.compile(r"[^A-Z0-9_]")


def _env_name(option: str) -> str:
    return "MODELPORT_STORE_" + _ENV_SAFE.sub("_", option.upper())


def artifact_access(workspace: Workspace, target: KubernetesTarget) -> tuple[ArtifactAccess, dict[str, str]]:
    """The store as pods reach it, and the credentials Secret's values (empty: no Secret needed).

    ``${VAR}`` references are resolved here, from the deploying user's environment, because pods
    do not have those variables; literal credentials never enter the plan ConfigMap.
    """
    check_artifact_url(workspace.artifact_url)
    # Keys stay in the workspace's form: the pod's ArtifactStore maps them to s3fs's itself.
    resolved = expand_environment_references(dict(workspace.store_location.storage_options))
    options: dict[str, Any] = {}
    secret: dict[str, str] = {}
    for name, value in resolved.items():
        if name in SECRET_STORAGE_OPTIONS:  # credentials travel in a Secret, as environment variables
            env = _env_name(name)
            secret[env] = str(value)
            options[name] = "${" + env + "}"
        else:
            options[name] = value
    if target.store_endpoint_url:
        options["endpoint_url"] = target.store_endpoint_url
    access = ArtifactAccess(
        url=workspace.artifact_url,
        credentials_secret=ARTIFACT_CREDENTIALS_SECRET if secret else None,
        storage_options=options,
    )
    return access, secret


def image_for(spec: ServiceSpec, target: KubernetesTarget) -> str:
    """The replica image: the environment's own image when it names one, else the target's.

    Azure ML's own images (``mcr.microsoft.com/azureml/…``, every environment's default) hold no
    modelport, so they mean "no image of its own", as in ``environment build-context``.
    """
    env = spec.environment
    if env is not None:
        image = ((env.definition.get("docker") or {}).get("baseImage")) or None
        if image and not str(image).startswith(AZUREML_IMAGES):
            return str(image)
    return target.image


def service_inputs(
    workspace: Workspace,
    spec: ServiceSpec,
    generation: int,
    target: KubernetesTarget,
    pdb_api_version: str = "policy/v1",
    *,
    environment_image: str | None = None,
    pull_secret_config: str | None = None,
) -> tuple[ServiceInputs, list[Manifest]]:
    """The inputs of one generation, and the namespace's shared Secrets it needs: the artifact
    store's credentials, the package index settings, the registry credentials.

    ``environment_image``: image mode's image of the service's environment (envimage.py), which
    pods run as it is; ``pull_secret_config``: the ``.dockerconfigjson`` they pull with.
    """
    access, credentials = artifact_access(workspace, target)
    secrets = (
        [shared_secret(ARTIFACT_CREDENTIALS_SECRET, target.namespace, credentials)] if credentials else []
    )
    image = image_for(spec, target)
    environment = cached_environment(spec, image_is_the_environments=image != target.image)
    if environment is not None and environment_image is not None:
        image, environment = environment_image, None
    index = package_index_secret(
        target.package_index_url,
        target.extra_index_urls,
        target.trusted_hosts,
        target.package_proxy,
        target.no_proxy,
    )
    if environment is not None and index:
        secrets.append(shared_secret(PACKAGE_INDEX_SECRET, target.namespace, index))
    if pull_secret_config is not None:
        secrets.append(pull_secret(REGISTRY_SECRET, target.namespace, pull_secret_config))
    files: list[FetchFile] = []
    for ref in spec.models:
        for row in Model(workspace, id=ref.id).stored_files():
            path = f"{model_path(ref)}/{row.path}"
            files.append(FetchFile(path, row.digest, row.mode))
    source = service_store.source_file_list(workspace, spec.name, generation)
    inline: dict[str, bytes] = {}
    if sum(f.size for f in source) <= INLINE_SOURCE_LIMIT:
        with tempfile.TemporaryDirectory(prefix="modelport-source-") as folder:
            for stored in source:
                local = Path(folder) / stored.digest
                if not local.exists():
                    workspace.artifact_store.fetch(stored.digest, local)
                inline[stored.path] = local.read_bytes()
    else:
        files.extend(FetchFile(f.path, f.digest, f.mode) for f in source)
    inputs = ServiceInputs(
        namespace=target.namespace,
        generation=generation,
        artifacts=access,
        files=tuple(files),
        image=image,
        inline_source=inline,
        progress_deadline_s=target.progress_deadline_s,
        pdb_api_version=pdb_api_version,
        pod_annotations=dict(target.pod_annotations),
        workspace_name=workspace.name,
        environment=environment,
        env_cache=NodeCache(
            target.env_cache, target.env_cache_max_gb, PACKAGE_INDEX_SECRET if index else None
        ),
        image_pull_secrets=(REGISTRY_SECRET,) if pull_secret_config is not None else (),
    )
    return inputs, secrets
