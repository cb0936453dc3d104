"""A Kubernetes compute target's definition: how its cluster is reached and what attach installs.

The definition is what the workspace stores for the target (``compute_targets``); attach options
are validated into it with errors that name the option, the value and the fix, and the driver
loads it back for a ready target. Nothing here talks to a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from modelport.compute import targets
from modelport.compute.kubernetes.capacity import FAST_PROD, FAST_PROD_MIN_NODES
from modelport.compute.kubernetes.envplacement import (
    DEFAULT_CACHE,
    DEFAULT_CACHE_MAX_GB,
    IMAGE_MODE,
    PVC_PREFIX,
    VARIABLE,
)
from modelport.compute.kubernetes.frontend_manifests import DEFAULT_SYSTEM_NAMESPACE, FrontendServiceType
from modelport.compute.kubernetes.objects import DEFAULT_IMAGE
from modelport.errors import ComputeTargetException, UserErrorException
from modelport.names import namespace_problem

if TYPE_CHECKING:
    from modelport.workspace import Workspace

COMPUTE_TYPE = "kubernetes"
DEFAULT_SERVICES_NAMESPACE = "modelport-services"
# Each replica reports its load and watches the routes: the API server's cost grows with the count.
MAX_FRONTEND_REPLICAS = 10


class KubernetesTarget(BaseModel):
    """How a cluster is reached and what attach installs there (stored as the target's definition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: str | None = None  # None: $KUBECONFIG, then ~/.kube/config
    context: str | None = None  # None: the kubeconfig's current context
    in_cluster: bool = False  # the pod's service-account credentials instead of a kubeconfig
    namespace: str = DEFAULT_SERVICES_NAMESPACE  # where services run
    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE  # where the front end runs
    cluster_purpose: Literal["FastProd", "DevTest"] = FAST_PROD
    image: str = DEFAULT_IMAGE
    frontend_service_type: FrontendServiceType = "LoadBalancer"
    # Front-end replicas; None: 3 on FastProd (one per node of its minimum), 1 on DevTest.
    frontend_replicas: int | None = None
    # The front end's address as clients reach it (an ingress, a port-forward); None: read from
    # the front end's Service (load balancer address, node port, or cluster IP).
    scoring_url: str | None = None
    # The artifact store's endpoint as pods reach it, when it differs from this machine's view.
    store_endpoint_url: str | None = None
    progress_deadline_s: int = 600
    pod_annotations: dict[str, str] = {}  # added to every service pod (sidecar switches, scrape hints)
    # Environments on the cluster (envplacement.py): each node's cache, its cap, and the package
    # index the pods install from (None: uv's default, PyPI); ${VAR} in the index settings is
    # resolved from the deploying user's environment, and the values travel in a Secret.
    env_cache: str = DEFAULT_CACHE
    env_cache_max_gb: float = DEFAULT_CACHE_MAX_GB
    package_index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    # An HTTP(S) proxy for the environment builds only (node cache and image mode), as corporate
    # networks put in front of PyPI or a mirror; ${VAR} allowed for its credentials. Replicas and
    # the model fetch never use it.
    package_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    # Image mode (envimage.py): each environment becomes an image, built on the deploying machine
    # on top of ``image`` and pushed to ``registry`` (HOST[:PORT][/PREFIX]); pods pull it with the
    # credentials, which travel in a Secret. The password is a ${VAR} reference, resolved when
    # used, so that it is never stored in the workspace.
    env_mode: Literal["node-cache", "image"] = "node-cache"
    registry: str | None = None
    registry_username: str | None = None
    registry_password: str | None = None
    registry_insecure: bool = False  # the registry speaks plain HTTP
    created: bool = False  # ComputeTarget.create (True) or attach (False)
    created_namespaces: tuple[str, ...] = ()  # the namespaces attach created (detach removes them)
    provisioning: dict[str, Any] = {}  # what create was asked for (agent_count, vm_size, ...)

    @field_validator("namespace", "system_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        problem = namespace_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("env_cache")
    @classmethod
    def _cache_location(cls, value: str) -> str:
        if value.startswith(PVC_PREFIX):
            problem = namespace_problem(value[len(PVC_PREFIX) :])  # a claim name is a DNS label too
            if problem is not None:
                raise ValueError(f"{PVC_PREFIX}CLAIM: {problem}")
        elif not value.startswith("/"):
            raise ValueError("give an absolute hostPath on the nodes (/var/lib/modelport/envs) or pvc:CLAIM")
        return value

    @field_validator("env_cache_max_gb")
    @classmethod
    def _cap(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be more than 0 GB, got {value}")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value:
            raise ValueError(
                "give HOST[:PORT][/PREFIX] without a scheme (--registry-insecure for plain HTTP)"
            )
        if (
            not value
            or any(char.isspace() for char in value)
            or value != value.lower()
            or value.endswith("/")
        ):
            raise ValueError("give HOST[:PORT][/PREFIX], lower case, such as registry.example:5000/team")
        return value

    @field_validator("package_proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("give the proxy's URL, http://[USER:${VAR}@]HOST:PORT (or https://)")
        return value

    @model_validator(mode="after")
    def _no_proxy_needs_proxy(self) -> KubernetesTarget:
        if self.no_proxy and self.package_proxy is None:
            raise ValueError("--no-proxy has no effect without --package-proxy: give the proxy, or drop it")
        return self

    @field_validator("registry_password")
    @classmethod
    def _password_reference(cls, value: str | None) -> str | None:
        if value is not None and not VARIABLE.search(value):
            raise ValueError(
                "give a ${VAR} reference (export VAR=... where you deploy and build): a literal password "
                "would be stored in the workspace's database"
            )
        return value

    @model_validator(mode="after")
    def _environment_mode(self) -> KubernetesTarget:
        if self.registry is None:
            given = [f for f in ("registry_username", "registry_password") if getattr(self, f) is not None]
            if self.registry_insecure:
                given.append("registry_insecure")
            if self.env_mode == IMAGE_MODE or given:
                what = f"env_mode={IMAGE_MODE!r}" if self.env_mode == IMAGE_MODE else ", ".join(given)
                raise ValueError(f"{what} needs a registry to push images to: give --registry HOST[/PREFIX]")
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError("give both --registry-username and --registry-password, or neither")
        if self.env_mode == IMAGE_MODE:
            unused = [
                f"{name}={getattr(self, name)!r}"
                for name, default in (
                    ("env_cache", DEFAULT_CACHE),
                    ("env_cache_max_gb", DEFAULT_CACHE_MAX_GB),
                )
                if getattr(self, name) != default
            ]
            if unused:
                raise ValueError(
                    f"{', '.join(unused)} set, but in env_mode={IMAGE_MODE!r} no node cache is used: "
                    "leave the node cache settings out, or use env_mode='node-cache'"
                )
        return self

    @field_validator("frontend_replicas")
    @classmethod
    def _replicas(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_FRONTEND_REPLICAS:
            raise ValueError(f"must be in 1..{MAX_FRONTEND_REPLICAS}, got {value}")
        return value

    def frontend_replica_count(self) -> int:
        """The front end's replica count: the setting, else by the cluster purpose."""
        if self.frontend_replicas is not None:
            return self.frontend_replicas
        return FAST_PROD_MIN_NODES if self.cluster_purpose == FAST_PROD else 1

    @field_validator("progress_deadline_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 10:
            raise ValueError(f"must be at least 10 seconds, got {value}")
        return value

    @property
    def attachment(self) -> str:
        """Where this target's front end serves services from (for conflict messages)."""
        return f"{self.system_namespace} (services namespace {self.namespace})"


def target_from_options(**options: Any) -> KubernetesTarget:
    """Validate attach options; errors name the option, the value and the fix."""
    try:
        return KubernetesTarget(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        raise UserErrorException(f"Invalid Kubernetes compute target options: {problems}.") from exc


def load_target(workspace: Workspace, name: str) -> KubernetesTarget:
    """The attached, ready target ``name`` of ``workspace``."""
    record = targets.require_target(workspace, name)
    if record.compute_type != COMPUTE_TYPE:
        raise ComputeTargetException(f"Compute target {name!r} is a {record.compute_type} target.")
    if record.state != targets.SUCCEEDED:
        raise ComputeTargetException(
            f"Compute target {name!r} is {record.state}, not ready for services. Fix: wait for its attach "
            f"to finish, or detach and attach it again (`modelport computetarget show -n {name}`)."
        )
    return KubernetesTarget.model_validate(record.definition)
