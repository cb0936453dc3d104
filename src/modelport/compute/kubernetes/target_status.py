"""What a Kubernetes target's cluster says about it now: where its front end is reached, and what
``computetarget show`` prints (the stored record plus nodes, CPUs and the front end's readiness).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.compute import targets
from modelport.compute.kubernetes.capacity import DEV_TEST, check_purpose
from modelport.compute.kubernetes.connection import cluster_errors, connect
from modelport.compute.kubernetes.frontend_manifests import FRONTEND_NAME
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import ComputeTargetException

if TYPE_CHECKING:
    from modelport.workspace import Workspace


def frontend_url(client: Any, target: KubernetesTarget) -> str | None:
    """The front end's base URL: the configured one, else from its Service (None while pending)."""
    from lightkube.resources.core_v1 import Node, Service

    if target.scoring_url:
        return target.scoring_url.rstrip("/")
    service = client.get(Service, FRONTEND_NAME, namespace=target.system_namespace)
    spec = service.spec
    if spec.type == "LoadBalancer":
        ingress = (service.status.loadBalancer.ingress or []) if service.status else []
        if not ingress:
            return None
        host = ingress[0].ip or ingress[0].hostname
        return f"http://{host}"
    if spec.type == "NodePort":
        for node in client.list(Node):
            for address in (node.status.addresses or []) if node.status else []:
                if address.type in ("ExternalIP", "InternalIP"):
                    return f"http://{address.address}:{spec.ports[0].nodePort}"
        return None
    return f"http://{spec.clusterIP}"


def describe(workspace: Workspace, record: targets.TargetRecord) -> dict[str, Any]:
    """What ``computetarget show`` prints: the record plus, when reachable, the cluster's view."""
    target = KubernetesTarget.model_validate(record.definition)
    info: dict[str, Any] = {
        "name": record.name,
        "computeType": "Kubernetes",
        "provisioningState": record.state,
        "provisioningErrors": record.error,
        "createdTime": record.created_time.isoformat(),
        "isAttachedCompute": not target.created,
        "clusterPurpose": target.cluster_purpose,
        "context": target.context,
        "kubeconfig": target.kubeconfig,
        "namespace": target.namespace,
        "systemNamespace": target.system_namespace,
        "image": target.image,
        "frontendServiceType": target.frontend_service_type,
        "frontendReplicas": target.frontend_replica_count(),
        "envMode": target.env_mode,  # how environments reach pods: node-cache or image
        "registry": target.registry,
    }
    if target.provisioning:
        info["provisioning"] = target.provisioning
    if record.state != targets.SUCCEEDED:
        return info
    try:
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Node

        client = connect(target)
        with cluster_errors(target, "reading the target's status"):
            capacity = check_purpose([n.to_dict() for n in client.list(Node)], DEV_TEST)
            front = client.get(Deployment, FRONTEND_NAME, namespace=target.system_namespace)
            info["nodes"] = capacity.nodes
            info["allocatableCpus"] = capacity.cpus
            info["frontendReadyReplicas"] = (front.status.readyReplicas or 0) if front.status else 0
            info["scoringBaseUrl"] = frontend_url(client, target)
    except ComputeTargetException as exc:
        info["clusterError"] = exc.message
    return info
