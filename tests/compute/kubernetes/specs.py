"""Service specs and inputs for the Kubernetes tests, built the way deploy() builds them."""

from __future__ import annotations

from typing import Any

from modelport.compute.kubernetes.fetch_plan import ArtifactAccess, FetchFile
from modelport.compute.kubernetes.manifests import ServiceInputs
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.service.deploy import with_keys
from modelport.service.spec import ModelRef, ServiceSpec, SourceRef

# The 1.20 testbed predates policy/v1 (1.21); the driver picks this by asking the server.
TESTBED_PDB_API = "policy/v1beta1"
DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def make_spec(name: str = "iris-svc", models: int = 1, **knobs: Any) -> ServiceSpec:
    """A validated, key-resolved spec for the kubernetes compute type."""
    effective = with_keys(KubernetesDeploymentConfig(**knobs).effective())
    refs = tuple(
        ModelRef(name=f"model{i}", version=i + 1, db_id=i + 1, root="model.pkl") for i in range(models)
    )
    return ServiceSpec(
        name=name,
        compute_type="kubernetes",
        compute_target="prod",
        models=refs,
        source=SourceRef(directory="src", entry_script="src/score.py", file_count=2),
        environment=None,
        deployment=effective,
        token_secret="ab" * 32,
    )


def make_inputs(
    namespace: str = "ml",
    inline: dict[str, bytes] | None = None,
    generation: int = 1,
    credentials: str | None = "store-credentials",
    pdb_api_version: str = "policy/v1",
) -> ServiceInputs:
    """Inputs with one model file and, unless ``inline`` is given, the source fetched from the store."""
    files = [FetchFile("azureml-models/model0/1/model.pkl", DIGEST_A, 0o644)]
    if inline is None:
        files.append(FetchFile("src/score.py", DIGEST_B, 0o644))
    return ServiceInputs(
        namespace=namespace,
        generation=generation,
        artifacts=ArtifactAccess(
            "s3://models/ws1",
            credentials_secret=credentials,
            storage_options={"endpoint_url": "http://minio:9000", "secret": "${AWS_SECRET_ACCESS_KEY}"},
        ),
        files=tuple(files),
        image="registry.example/modelport/runtime:0.1.0",
        inline_source=inline or {},
        pdb_api_version=pdb_api_version,
    )
