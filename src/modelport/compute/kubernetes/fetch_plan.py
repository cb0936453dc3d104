"""The plan a service pod's init container follows: which files, from which store, laid out where.

Pure functions and types: the artifact store as pods reach it (:class:`ArtifactAccess`, its
credentials in a Secret that the plan names but never holds), the files to fetch with their
digests, and the plan itself (``plan.json``), which :mod:`~modelport.compute.kubernetes.manifests`
puts into a ConfigMap and :mod:`~modelport.compute.kubernetes.fetch` carries out in the pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from modelport.errors import UserErrorException
from modelport.service.replica_contract import model_dir
from modelport.service.spec import ServiceSpec

# Where the init container lays out models and source (Azure ML's layout) and the scorer runs.
APP_ROOT = "/var/azureml-app"
# Where the pod mounts the ConfigMap with a small source folder, for the init container to copy.
SOURCE_MOUNT = "/var/modelport/source"
# A ConfigMap holds at most 1 MiB; half of it leaves room for keys and metadata. Larger source
# folders are fetched from the artifact store by the init container, like the models.
INLINE_SOURCE_LIMIT = 512 * 1024
ARTIFACT_CREDENTIALS_SECRET = "modelport-artifact-credentials"

_REMOTE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https"})


@dataclass(frozen=True)
class FetchFile:
    """One file the init container writes under the app root: its relative path, blob digest and mode."""

    path: str
    digest: str
    mode: int = 0o644


@dataclass(frozen=True)
class ArtifactAccess:
    """The workspace's artifact store as pods reach it: its URL and the Secret with its credentials.

    ``credentials_secret`` names a Secret in the service namespace whose keys become environment
    variables of the init container (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL`` …); ``None`` when the cluster reaches the store without credentials.
    """

    url: str
    credentials_secret: str | None = None
    # Non-secret fsspec options; values such as "${AWS_SECRET_ACCESS_KEY}" are read from the
    # credentials Secret's environment variables inside the pod (workspace/artifacts.py).
    storage_options: Mapping[str, Any] = field(default_factory=dict)


def check_artifact_url(url: str) -> str:
    """Return ``url`` when pods can read it; refuse a local folder with the fix."""
    scheme = urlparse(url).scheme.lower()
    if scheme in _REMOTE_SCHEMES:
        return url
    raise UserErrorException(
        f"The workspace's artifact store is {url!r}, a folder on this machine, which pods on a cluster "
        "cannot read. Fix: use an artifact store the cluster can reach (artifact_url s3://bucket/prefix "
        "with storage_options endpoint_url/key/secret in the workspace configuration), then register "
        "the models again or copy the store to it."
    )


def inline_source_fits(files: Mapping[str, bytes]) -> bool:
    """True when these source files are small enough to ship in a ConfigMap."""
    return sum(len(content) for content in files.values()) <= INLINE_SOURCE_LIMIT


def fetch_plan(
    spec: ServiceSpec, artifacts: ArtifactAccess, files: Sequence[FetchFile], inline_paths: Iterable[str]
) -> dict[str, Any]:
    """What the init container does: the files to fetch from the store, and where inline source lies.

    ``inline_paths`` are the source files shipped in a ConfigMap instead (paths under the app root).
    """
    check_artifact_url(artifacts.url)
    inline = sorted(inline_paths)
    return {
        "artifactUrl": artifacts.url,
        "storageOptions": dict(artifacts.storage_options),
        "appRoot": APP_ROOT,
        "modelDir": model_dir(spec.models),
        "files": [{"path": f.path, "digest": f.digest, "mode": f.mode} for f in files],
        "inlineSource": SOURCE_MOUNT if inline else None,
        "inlinePaths": inline,
    }
