"""The replica contract: what every replica of a service is given, whichever target runs it.

A replica is ``modelport serve`` started in an *app root* that holds the shipped source and the
models in Azure ML's layout (``azureml-models/<name>/<version>/<file or folder>``). It gets the
environment variables of :func:`replica_environment` (the environment definition's own variables
first, the contract's on top, so they win), listens on :data:`RUNTIME_PORT` where the target
chooses no port itself, and is probed on :data:`LIVENESS_PATH` and :data:`READINESS_PATH`.

The local agent (``compute/local``) and the Kubernetes manifests (``compute/kubernetes``) build
their replicas from here, so a variable or a path added here reaches both targets. What only one
target adds (the local process's inherited environment and GPU pinning; the pod's ports) stays in
that target.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelport.runtime.config import DEFAULT_GRACEFUL_TIMEOUT_S, DEFAULT_PORT, GRACEFUL_TIMEOUT_ENV
from modelport.runtime.model_path import MODELS_DIR
from modelport.service.spec import ModelRef, ServiceSpec, SourceRef

RUNTIME_PORT = DEFAULT_PORT
# Azure ML's liveness probe asked GET /; ready once every worker's init() has returned.
LIVENESS_PATH = "/"
READINESS_PATH = "/health/ready"
# A run() may overrun its scoring timeout by this much before the runtime stops it.
RUN_OVERRUN_S = 2


def graceful_timeout(spec: ServiceSpec) -> int:
    """Seconds a replica's requests in flight get after SIGTERM: enough for the longest run() the
    scoring timeout allows, and at least ``modelport serve``'s default."""
    longest_run = -(-spec.deployment.scoring_timeout_ms // 1000) + RUN_OVERRUN_S
    return max(DEFAULT_GRACEFUL_TIMEOUT_S, longest_run)


def model_path(ref: ModelRef) -> str:
    """Where one model's stored files go, relative to the app root."""
    return f"{MODELS_DIR}/{ref.name}/{ref.version}"


def model_dir(models: Sequence[ModelRef]) -> str:
    """``AZUREML_MODEL_DIR`` relative to the app root: the model's own folder when there is one
    model, else the folder holding them all (Azure ML's rule)."""
    if len(models) == 1:
        return model_path(models[0])
    return MODELS_DIR


def app_environment(models: Sequence[ModelRef], source: SourceRef, app_root: str) -> dict[str, str]:
    """The variables that locate the app root's models and source: what a package's image sets too."""
    env = {
        "AML_APP_ROOT": app_root,
        "AZUREML_MODEL_DIR": f"{app_root}/{model_dir(models)}",
        "AZUREML_ENTRY_SCRIPT": source.entry_script,
    }
    if source.directory:
        env["AZUREML_SOURCE_DIRECTORY"] = source.directory
    return env


def serve_arguments(models: Sequence[ModelRef], source: SourceRef, app_root: str) -> list[str]:
    """``modelport serve``'s arguments for a replica in a container: the app root's entry script and
    models, :data:`RUNTIME_PORT` on every interface (the container's network is the boundary)."""
    return [
        "--entry_script",
        f"{app_root}/{source.entry_script}",
        "--model_dir",
        f"{app_root}/{model_dir(models)}",
        "--port",
        str(RUNTIME_PORT),
        "--host",
        "0.0.0.0",
    ]


def replica_environment(spec: ServiceSpec, app_root: str, workspace_name: str | None) -> dict[str, str]:
    """The variables a replica of ``spec`` runs with, as Azure ML's scoring container had them.

    ``SCORING_TIMEOUT_MS`` makes the runtime stop a ``run()`` that outlives the front end's
    timeout, so a timed-out request frees its worker on every target; the graceful timeout lets
    the longest such request finish when the replica is stopped.
    """
    env: dict[str, str] = {}
    if spec.environment is not None:
        variables = spec.environment.definition.get("environmentVariables") or {}
        env.update({str(k): str(v) for k, v in variables.items()})
    env.update(app_environment(spec.models, spec.source, app_root))
    env.update(
        {
            "SERVICE_NAME": spec.name,
            "SCORING_TIMEOUT_MS": str(spec.deployment.scoring_timeout_ms),
            GRACEFUL_TIMEOUT_ENV: str(graceful_timeout(spec)),
        }
    )
    if workspace_name:
        env["WORKSPACE_NAME"] = workspace_name
    return env
