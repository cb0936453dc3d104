"""``Webservice.serialize``: a service in Azure ML's dict form (``modelport service show -o json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.service.spec import ServiceSpec

if TYPE_CHECKING:
    from modelport.service.webservice import Webservice


def service_dict(service: Webservice, spec: ServiceSpec) -> dict[str, Any]:
    """Azure ML's keys for ``service``, whose desired state is ``spec``, and what its target observed."""
    config = spec.deployment
    return {
        "name": service.name,
        "description": service.description,
        "tags": service.tags,
        "properties": service.properties,
        "state": service.state,
        "createdTime": service.created_time.isoformat(),
        "updatedTime": service.updated_time.isoformat(),
        "error": service.error,
        "computeType": service.compute_type,
        "computeName": service.compute_name,
        "machine": service.machine,
        "workspaceName": service.workspace.name,
        "scoringUri": service.scoring_uri,
        "swaggerUri": service.swagger_uri,
        "authEnabled": service.auth_enabled,
        "aadAuthEnabled": service.token_auth_enabled,
        "appInsightsEnabled": config.enable_app_insights,
        "autoScaler": config.autoscaler_json(),
        "containerResourceRequirements": {
            "cpu": config.cpu_cores,
            "cpuLimit": config.cpu_cores_limit,
            "memoryInGB": config.memory_gb,
            "memoryInGBLimit": config.memory_gb_limit,
            "gpu": config.gpu_cores,
        },
        "dataCollection": {"eventHubEnabled": False, "storageEnabled": config.collect_model_data},
        "maxConcurrentRequestsPerContainer": config.replica_max_concurrent_requests,
        "maxQueueWaitMs": config.max_request_wait_time,
        "livenessProbeRequirements": {
            "periodSeconds": config.period_seconds,
            "initialDelaySeconds": config.initial_delay_seconds,
            "timeoutSeconds": config.timeout_seconds,
            "successThreshold": config.success_threshold,
            "failureThreshold": config.failure_threshold,
        },
        "numReplicas": config.num_replicas,
        "scoringTimeoutMs": config.scoring_timeout_ms,
        "namespace": config.namespace,
        "generation": service.generation,
        "models": [m.id for m in spec.models],
        "modelDetails": [m.model_dump() for m in spec.models],
        "environmentDetails": spec.environment.model_dump() if spec.environment else None,
        "entryScript": spec.source.entry_script,
        "deploymentStatus": service.observed,
    }
