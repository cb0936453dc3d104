"""How a service's environment reaches its pods, decided per generation.

* No environment, or a user-managed one: the image's Python runs as it is; nothing is installed
  (Azure ML's ``user_managed_dependencies``: the image is the environment).
* The environment names its own image (``docker.base_image`` other than Azure ML's defaults, for
  example one built from ``modelport environment build-context``): that image, as it is.
* Otherwise **the node cache** (:mod:`.envcache`): an ``environment`` init container builds the
  environment with uv into a cache folder the node's pods share, keyed by its content hash, exactly
  as the local target builds it; the replica then runs in it. The first pod on a node builds, the
  others reuse; no image is built and no registry is needed.

The cache is a hostPath (``/var/lib/modelport/envs`` by default) or a volume claim
(``pvc:NAME``), with a size cap. The init container runs as root, because a hostPath folder the
kubelet creates belongs to root; what it writes is readable by the replica's user, and the lock
and stamp files the replica touches are writable by everyone (envcache.py). The package index
settings (index URL, extra indexes, trusted hosts) come from a Secret, because index URLs often
carry credentials.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from modelport.compute.kubernetes import envcache
from modelport.errors import UserErrorException
from modelport.service.spec import ServiceSpec

ENVIRONMENT_CONTAINER = "environment"
CACHE_MOUNT = "/var/lib/modelport/envs"
DEFAULT_CACHE = CACHE_MOUNT  # the hostPath on the node; "pvc:NAME" for a volume claim
PVC_PREFIX = "pvc:"
DEFAULT_CACHE_MAX_GB = 20.0
PACKAGE_INDEX_SECRET = "modelport-package-index"
REGISTRY_SECRET = "modelport-registry"  # kubernetes.io/dockerconfigjson: the pods' imagePullSecrets
IMAGE_MODE = "image"  # the environment is an image built and pushed by modelport (envimage.py)
_VOLUME = "modelport-envs"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class NodeCache:
    """The target's node cache: where it lives, its cap, and the Secret with the index settings."""

    location: str = DEFAULT_CACHE
    max_gb: float = DEFAULT_CACHE_MAX_GB
    index_secret: str | None = None

    def volume(self) -> dict[str, Any]:
        """The pod volume of the cache."""
        if self.location.startswith(PVC_PREFIX):
            claim = self.location[len(PVC_PREFIX) :]
            return {"name": _VOLUME, "persistentVolumeClaim": {"claimName": claim}}
        return {"name": _VOLUME, "hostPath": {"path": self.location, "type": "DirectoryOrCreate"}}


@dataclass(frozen=True)
class CachedEnvironment:
    """A service environment that pods get from the node cache."""

    label: str  # name:version, for messages
    content_hash: str
    definition: str  # the registered definition, JSON: what the init container builds


def cached_environment(spec: ServiceSpec, image_is_the_environments: bool) -> CachedEnvironment | None:
    """The environment to build in the node cache, or None when the image already is the environment."""
    env = spec.environment
    if env is None or image_is_the_environments:
        return None
    python = env.definition.get("python") or {}
    if python.get("userManagedDependencies"):
        return None
    return CachedEnvironment(
        label=f"{env.name}:{env.version}",
        content_hash=env.content_hash,
        definition=json.dumps(env.definition, sort_keys=True),
    )


def environment_init(env: CachedEnvironment, cache: NodeCache, image: str) -> dict[str, Any]:
    """The ``environment`` init container: build or reuse the environment, then make room."""
    container: dict[str, Any] = {
        "name": ENVIRONMENT_CONTAINER,
        "image": image,
        "command": ["python", "-m", "modelport.compute.kubernetes.envcache", "build"],
        "env": [
            {"name": envcache.ENVIRONMENT_ENV, "value": env.definition},
            {"name": envcache.CACHE_ENV, "value": CACHE_MOUNT},
            {"name": envcache.MAX_BYTES_ENV, "value": str(int(cache.max_gb * 1024**3))},
            {"name": envcache.HASH_ENV, "value": env.content_hash},
        ],
        "volumeMounts": [{"name": _VOLUME, "mountPath": CACHE_MOUNT}],
        "securityContext": {"runAsUser": 0},
        # Installing is CPU- and memory-hungry for a moment; the limit keeps a huge resolution from
        # taking the node down.
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
        "terminationMessagePolicy": "File",
    }
    if cache.index_secret:
        container["envFrom"] = [{"secretRef": {"name": cache.index_secret}}]
    return container


def replica_command(env: CachedEnvironment, serve_args: list[str]) -> list[str]:
    """The replica's command: hold the cached environment, then ``modelport serve`` in it."""
    return ["python", "-m", "modelport.compute.kubernetes.envcache", "run", "--", *serve_args]


def replica_env(env: CachedEnvironment) -> list[dict[str, str]]:
    """What the replica's command needs to find its environment in the cache."""
    return [
        {"name": envcache.CACHE_ENV, "value": CACHE_MOUNT},
        {"name": envcache.HASH_ENV, "value": env.content_hash},
    ]


def replica_mount() -> dict[str, Any]:
    """The cache as the replica sees it (it only marks its environment used and holds its lock)."""
    return {"name": _VOLUME, "mountPath": CACHE_MOUNT}


def package_index_secret(
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    trusted_hosts: tuple[str, ...],
    proxy: str | None = None,
    no_proxy: tuple[str, ...] = (),
) -> dict[str, str]:
    """The Secret's values: uv's own variables, so the init container passes them to uv as they are.

    ``${VAR}`` anywhere in a value (``https://user:${INDEX_TOKEN}@nexus.example/simple``) is
    replaced by the deploying user's variable, so that credentials need not be stored with the target.
    """
    values: dict[str, str] = {}
    if index_url:
        values["UV_INDEX_URL"] = expand(index_url, "--index-url", PACKAGE_INDEX_SECRET)
    if extra_index_urls:
        values["UV_EXTRA_INDEX_URL"] = " ".join(
            expand(u, "--extra-index-url", PACKAGE_INDEX_SECRET) for u in extra_index_urls
        )
    if trusted_hosts:
        values["UV_INSECURE_HOST"] = " ".join(
            expand(h, "--trusted-host", PACKAGE_INDEX_SECRET) for h in trusted_hosts
        )
    return values | proxy_variables(proxy, no_proxy, PACKAGE_INDEX_SECRET)


def proxy_variables(proxy: str | None, no_proxy: tuple[str, ...], secret: str) -> dict[str, str]:
    """The proxy as the variables uv, pip and the image builders read (both spellings: tools differ
    in which they honour); empty without a proxy."""
    if proxy is None:
        return {}
    url = expand(proxy, "--package-proxy", secret)
    values = {"HTTP_PROXY": url, "HTTPS_PROXY": url}
    if no_proxy:
        values["NO_PROXY"] = ",".join(no_proxy)
    return values | {name.lower(): value for name, value in values.items()}


def expand(value: str, setting: str, secret: str) -> str:
    """``value`` with each ``${VAR}`` replaced by the deploying user's variable (``setting`` and
    ``secret``, where the value goes, name the fix when one is not set)."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise UserErrorException(
                f"The compute target's {setting} refers to ${{{name}}}, which is not set here. Fix: export "
                f"{name}=... before deploying (the value goes into the Secret {secret})."
            )
        return os.environ[name]

    return VARIABLE.sub(variable, value)
