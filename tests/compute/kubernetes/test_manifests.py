"""Tier 0: every manifest modelport generates validates strictly for current Kubernetes versions,
and carries what the service's configuration asks for. No cluster is needed."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes_validate
import pytest

from modelport.compute.kubernetes import fetch_plan as fp
from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.envplacement import CachedEnvironment, NodeCache
from modelport.compute.kubernetes.objects import (
    Manifest,
    find,
    owner_reference,
    service_object_name,
    with_owner,
)
from modelport.compute.kubernetes.termination import PRESTOP_DELAY_S
from modelport.errors import ComputeTargetException, UserErrorException
from tests.compute.kubernetes.specs import DIGEST_A, make_inputs, make_spec

VERSIONS = ("1.25", "1.30", "1.37")
SIGNING_KEY = "k" * 48


def _all_manifests() -> dict[str, list[Manifest]]:
    cluster = fm.ClusterInputs(services_namespace="ml", service_type="NodePort")
    return {
        "service-fetched-source": m.service_manifests(make_spec(), make_inputs()),
        "service-inline-source": m.service_manifests(
            make_spec(models=2, gpu_cores=1, cpu_cores_limit=2.0, memory_gb_limit=4.0),
            make_inputs(inline={"src/score.py": b"def init(): pass\n", "src/w.bin": b"\xff\x00"}),
        ),
        "service-fixed-replicas": m.service_manifests(
            make_spec(autoscale_enabled=False, num_replicas=3), make_inputs()
        ),
        "service-node-cache": m.service_manifests(
            make_spec(),
            replace(
                make_inputs(),
                environment=CachedEnvironment("sk:1", "h" * 64, "{}"),
                env_cache=NodeCache("pvc:envs", 5.0, "modelport-package-index"),
            ),
        ),
        "attach": fm.attach_manifests(cluster, SIGNING_KEY),
    }


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(_all_manifests()))
def test_every_manifest_validates_strictly(case: str, version: str) -> None:
    for manifest in _all_manifests()[case]:
        # SchemaNotFoundError (an API version the release no longer serves) fails the test too.
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_catches_an_unknown_field() -> None:
    # The check above is only worth something if strict mode refuses a misspelt field.
    broken = m.deployment(make_spec(), make_inputs())
    broken["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37", strict=True)


def _scorer(manifest: Manifest) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def test_resources_follow_cpu_memory_and_gpu_knobs() -> None:
    spec = make_spec(cpu_cores=0.5, memory_gb=1.5, cpu_cores_limit=2.0, memory_gb_limit=4.0, gpu_cores=2)
    resources = _scorer(m.deployment(spec, make_inputs()))["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "1536Mi", "nvidia.com/gpu": "2"}
    assert resources["limits"] == {"cpu": "2000m", "memory": "4096Mi", "nvidia.com/gpu": "2"}


def test_limits_default_to_requests_and_aml_defaults_apply() -> None:
    resources = _scorer(m.deployment(make_spec(), make_inputs()))["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "512Mi"}
    assert resources["limits"] == resources["requests"]


def test_probes_follow_liveness_knobs_and_readiness_route() -> None:
    spec = make_spec(period_seconds=7, initial_delay_seconds=20, timeout_seconds=3, failure_threshold=5)
    scorer = _scorer(m.deployment(spec, make_inputs()))
    live = scorer["livenessProbe"]
    assert live["httpGet"]["path"] == "/"
    assert (live["periodSeconds"], live["initialDelaySeconds"], live["timeoutSeconds"]) == (7, 20, 3)
    assert live["failureThreshold"] == 5
    assert live["successThreshold"] == 1  # Kubernetes refuses anything else on a liveness probe
    assert scorer["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert scorer["readinessProbe"]["httpGet"]["port"] == m.RUNTIME_PORT


def test_aml_liveness_defaults() -> None:
    live = _scorer(m.deployment(make_spec(), make_inputs()))["livenessProbe"]
    assert (live["periodSeconds"], live["initialDelaySeconds"], live["timeoutSeconds"]) == (10, 310, 2)
    assert live["failureThreshold"] == 3


def test_model_dir_layout_for_one_and_several_models() -> None:
    one = _scorer(m.deployment(make_spec(models=1), make_inputs()))
    several = _scorer(m.deployment(make_spec(models=2), make_inputs()))
    env_one = {e["name"]: e["value"] for e in one["env"]}
    env_several = {e["name"]: e["value"] for e in several["env"]}
    assert env_one["AZUREML_MODEL_DIR"] == f"{fp.APP_ROOT}/azureml-models/model0/1"
    assert env_several["AZUREML_MODEL_DIR"] == f"{fp.APP_ROOT}/azureml-models"
    assert f"{fp.APP_ROOT}/src/score.py" in one["command"]


def test_init_container_fetches_into_the_shared_empty_dir() -> None:
    manifest = m.deployment(make_spec(), make_inputs())
    pod = manifest["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["app"]
    assert {"name": "app", "mountPath": fp.APP_ROOT} in init["volumeMounts"]
    assert {"name": "app", "mountPath": fp.APP_ROOT} in pod["containers"][0]["volumeMounts"]
    assert init["envFrom"] == [{"secretRef": {"name": "store-credentials"}}]
    plan_map = m.fetch_config_map(make_spec(), make_inputs())
    assert volumes["fetch"]["configMap"]["name"] == plan_map["metadata"]["name"]
    plan = json.loads(plan_map["data"]["plan.json"])
    assert plan["artifactUrl"] == "s3://models/ws1"
    assert plan["files"][0] == {
        "path": "azureml-models/model0/1/model.pkl",
        "digest": DIGEST_A,
        "mode": 0o644,
    }
    # Credentials are referenced, never copied into the plan.
    assert plan["storageOptions"]["secret"] == "${AWS_SECRET_ACCESS_KEY}"


def test_small_source_ships_in_a_config_map_with_paths_restored() -> None:
    inline = {"src/score.py": b"def init(): pass\n", "src/lib/w.bin": b"\xff\x00"}
    spec, inputs = make_spec(), make_inputs(inline=inline)
    source = m.source_config_map(spec, inputs)
    assert source is not None
    assert sorted([*source["data"], *source["binaryData"]]) == ["f0", "f1"]
    volume = next(
        v for v in m.deployment(spec, inputs)["spec"]["template"]["spec"]["volumes"] if v["name"] == "source"
    )
    assert volume["configMap"]["items"] == [
        {"key": "f0", "path": "src/lib/w.bin"},
        {"key": "f1", "path": "src/score.py"},
    ]
    assert source["binaryData"]["f0"] == "/wA="
    assert source["data"]["f1"] == "def init(): pass\n"


def test_large_source_is_refused_for_a_config_map() -> None:
    inline = {"src/big.bin": b"x" * (fp.INLINE_SOURCE_LIMIT + 1)}
    assert not fp.inline_source_fits(inline)
    with pytest.raises(ComputeTargetException):
        m.source_config_map(make_spec(), make_inputs(inline=inline))


def test_changed_plan_is_a_new_config_map_and_a_new_pod_template() -> None:
    spec = make_spec()
    first = m.deployment(spec, make_inputs(generation=1))
    second = m.deployment(spec, make_inputs(generation=2, inline={"src/score.py": b"x"}))
    assert first["spec"]["template"] != second["spec"]["template"]
    names = [
        v["configMap"]["name"]
        for d in (first, second)
        for v in d["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "fetch"
    ]
    assert names[0] != names[1]


def test_a_local_artifact_store_is_refused_with_the_fix() -> None:
    inputs = make_inputs()
    local = m.ServiceInputs(
        namespace="ml", generation=1, artifacts=fp.ArtifactAccess("/home/me/ws/artifacts"), files=inputs.files
    )
    with pytest.raises(UserErrorException, match="s3://"):
        m.service_manifests(make_spec(), local)
    with pytest.raises(UserErrorException):
        fp.check_artifact_url("file:///tmp/store")
    assert fp.check_artifact_url("s3://bucket/prefix") == "s3://bucket/prefix"


def test_progress_deadline_defaults_to_kubernetes_and_is_configurable() -> None:
    assert m.deployment(make_spec(), make_inputs())["spec"]["progressDeadlineSeconds"] == 600
    short = replace(make_inputs(), progress_deadline_s=30)
    assert m.deployment(make_spec(), short)["spec"]["progressDeadlineSeconds"] == 30


def test_replicas_left_to_the_autoscaler_unless_fixed() -> None:
    assert "replicas" not in m.deployment(make_spec(), make_inputs())["spec"]
    fixed = m.deployment(make_spec(autoscale_enabled=False, num_replicas=3), make_inputs())
    assert fixed["spec"]["replicas"] == 3


def test_every_port_says_tcp() -> None:
    for manifests in _all_manifests().values():
        for manifest in manifests:
            if manifest["kind"] == "Service":
                assert all(p["protocol"] == "TCP" for p in manifest["spec"]["ports"])
            if manifest["kind"] == "Deployment":
                for container in manifest["spec"]["template"]["spec"]["containers"]:
                    assert all(p["protocol"] == "TCP" for p in container.get("ports", []))


def test_labels_select_the_service_pods_and_owner_references_point_at_the_deployment() -> None:
    spec = make_spec()
    objects = m.service_manifests(spec, make_inputs())
    for manifest in objects:
        assert manifest["metadata"]["labels"][m.LABEL_SERVICE] == spec.name
        assert manifest["metadata"]["namespace"] == "ml"
    dep = find(objects, "Deployment")
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )
    assert find(objects, "Service")["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    owned = with_owner(find(objects, "Secret"), owner_reference(dep, "1234"))
    assert owned["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": spec.name,
            "uid": "1234",
            "controller": False,
            "blockOwnerDeletion": True,
        }
    ]


def test_keys_secret_holds_the_resolved_keys() -> None:
    spec = make_spec(primary_key="p" * 20, secondary_key="s" * 20)
    secret = m.keys_secret(spec, "ml")
    assert secret["stringData"]["primaryKey"] == "p" * 20
    assert secret["stringData"]["secondaryKey"] == "s" * 20
    assert secret["stringData"]["authMode"] == "key"
    assert secret["stringData"]["tokenSecret"] == spec.token_secret


def test_a_disruption_budget_lets_one_replica_go_at_a_time() -> None:
    budget = find(m.service_manifests(make_spec(), make_inputs()), "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {m.LABEL_SERVICE: "iris-svc"}}}
    older = m.disruption_budget(make_spec(), make_inputs(pdb_api_version="policy/v1beta1"))
    assert older["apiVersion"] == "policy/v1beta1"


def test_target_pod_annotations_are_added_and_never_override_modelports() -> None:
    inputs = replace(
        make_inputs(), pod_annotations={"sidecar.istio.io/inject": "false", m.ANNOTATION_GENERATION: "99"}
    )
    annotations = m.deployment(make_spec(), inputs)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"sidecar.istio.io/inject": "false", m.ANNOTATION_GENERATION: "1"}


def test_the_replica_gets_azure_mls_variables_and_the_environments_own() -> None:
    from modelport.service.spec import EnvironmentRef

    definition = {"name": "sk", "environmentVariables": {"OMP_NUM_THREADS": "1", "SERVICE_NAME": "mine"}}
    spec = make_spec().model_copy(
        update={
            "environment": EnvironmentRef(name="sk", version="1", definition=definition, content_hash="h")
        }
    )
    inputs = replace(make_inputs(), workspace_name="team-ws")
    env = {e["name"]: e["value"] for e in _scorer(m.deployment(spec, inputs))["env"]}
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["SERVICE_NAME"] == "iris-svc"  # modelport's own win
    assert env["AZUREML_ENTRY_SCRIPT"] == "src/score.py" and env["AZUREML_SOURCE_DIRECTORY"] == "src"
    assert env["WORKSPACE_NAME"] == "team-ws"
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/model0/1"


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.mark.parametrize(("scoring_timeout_ms", "graceful_s"), [(5_000, 30), (60_000, 62), (90_500, 93)])
def test_replicas_drain_within_a_grace_period_that_covers_the_longest_run(
    scoring_timeout_ms: int, graceful_s: int
) -> None:
    deployment = m.deployment(make_spec(scoring_timeout_ms=scoring_timeout_ms), make_inputs())
    scorer = _scorer(deployment)
    # The replica drains for as long as a run() may last (at least the runtime's default) ...
    assert _env(scorer)["MODELPORT_GRACEFUL_TIMEOUT"] == str(graceful_s)
    # ... after a preStop delay that lets the front end and kube-proxy stop sending it work, ...
    prestop = scorer["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop[:2] == ["python", "-c"] and f"sleep({PRESTOP_DELAY_S})" in prestop[2]
    # ... and Kubernetes waits for both before it kills the container.
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > PRESTOP_DELAY_S + graceful_s


def test_events_are_matched_to_a_service_by_its_objects_names() -> None:
    owned = service_object_name("iris")
    assert (
        owned.fullmatch("iris")
        and owned.fullmatch("iris-7d9f8c6b5")
        and owned.fullmatch("iris-7d9f8c6b5-x2k9q")
    )
    assert (
        not owned.fullmatch("iris-svc")
        and not owned.fullmatch("iris2")
        and not owned.fullmatch("other-7d9f8c6b5")
    )
    assert not owned.fullmatch("iris-7d9f8c6b5-x2k9q-extra")
