"""Tier 1, end to end: real replicas on the testbed, scored through the in-cluster front end.

The services namespace is labelled for the simulated node to run its pods as local processes
(tests/compute/kubernetes/kubelet.py): the init container really fetches the model from the S3-protocol store
(moto) and `modelport serve` really serves it; logs come through the API server from the
simulated kubelet's log endpoint. The front end is `python -m modelport.compute.kubernetes.frontend`
run on this machine with the testbed kubeconfig (no pod network here), and the target is attached
with that address as its scoring URL. What still needs a real cluster is in docs/kubernetes.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from modelport import Model
from modelport.compute.kubernetes.cluster import attach, detach
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.errors import WebserviceException
from modelport.service import states
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.compute.kubernetes.kubelet import RUN_LABEL, RUN_PROCESS
from tests.compute.kubernetes.node import SimulatedNode
from tests.compute.kubernetes.testbed import ControlPlane
from tests.servers import free_port, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.s3]

IRIS_SCORE = """\
import json
import os

import joblib

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
    print("iris model loaded", flush=True)


def run(raw_data):
    data = json.loads(raw_data)["data"]
    print("scored", len(data), "rows")  # no flush: Azure ML users rely on print() reaching the logs
    return model.predict(data).tolist()
"""
FAILING_INIT = """\
def init():
    raise RuntimeError("the model file is corrupt (raised on purpose by the test)")


def run(raw_data):
    return raw_data
"""
SAMPLE = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


@pytest.fixture
def cluster(
    workspace_factory, control_plane: ControlPlane, node: SimulatedNode, kube: Client, tmp_path: Path
) -> Iterator[tuple[Workspace, KubernetesTarget]]:  # type: ignore[no-untyped-def]
    """A workspace on S3, target ``prod`` attached with its pods run for real, and its front end running."""
    ws = workspace_factory("sqlite-s3")
    suffix = uuid.uuid4().hex[:8]
    services = f"run-{suffix}"
    kube.create(Namespace(metadata=ObjectMeta(name=services, labels={RUN_LABEL: RUN_PROCESS})))
    port = free_port()
    target = KubernetesTarget(
        kubeconfig=str(control_plane.kubeconfig),
        namespace=services,
        system_namespace=f"sys-{suffix}",
        cluster_purpose="DevTest",
        frontend_service_type="ClusterIP",
        scoring_url=f"http://127.0.0.1:{port}",
    )
    attach(ws, "prod", target)
    log = open(tmp_path / "frontend.log", "wb")  # noqa: SIM115 - closed at teardown
    front = subprocess.Popen(
        [
            sys.executable, "-m", "modelport.compute.kubernetes.frontend",
            "--kubeconfig", str(control_plane.kubeconfig), "--namespace", services,
            "--host", "127.0.0.1", "--port", str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            assert front.poll() is None, (tmp_path / "frontend.log").read_text()
            return False

    try:
        wait_until(answers, "the front end answers")
        yield ws, target
    finally:
        for service in Webservice.list(ws):
            service.delete()
        detach(ws, "prod")
        front.terminate()
        front.wait(30)
        log.close()
        kube.delete(Namespace, services)


def _deploy(
    ws: Workspace, name: str, model: Model, script: str, tmp_path: Path, **knobs: object
) -> Webservice:
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "score.py").write_text(script)
    config = KubernetesDeploymentConfig(
        cpu_cores=0.1,
        memory_gb=0.5,
        autoscale_enabled=False,
        num_replicas=1,
        compute_target_name="prod",
        **knobs,
    )
    inference = InferenceConfig(entry_script="score.py", source_directory=str(source))
    return Model.deploy(ws, name, [model], inference, config)


def test_a_model_is_fetched_served_scored_rotated_updated_and_logged(
    cluster: tuple[Workspace, KubernetesTarget], iris_file: Path, tmp_path: Path
) -> None:
    ws, _ = cluster
    model = Model.register(ws, str(iris_file), "iris")

    service = _deploy(ws, "iris-svc", model, IRIS_SCORE, tmp_path)
    service.wait_for_deployment(timeout_sec=240)

    assert service.state == states.HEALTHY
    assert service.scoring_uri.endswith("/api/v1/service/iris-svc/score")
    assert service.run(SAMPLE) == [0, 2]
    init_log = service.get_logs(init=True)
    assert "fetching 1 file(s)" in init_log and "azureml-models/iris/1/model.pkl" in init_log
    assert "iris model loaded" in service.get_logs()
    wait_until(lambda: "scored 2 rows" in service.get_logs(), "run()'s print() in get_logs()", 30, 0.5)
    primary, secondary = service.get_keys()
    refused = httpx.post(service.scoring_uri, json=SAMPLE, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401

    service.regen_key("Primary", set_key="rotated-primary-key-000")

    def only_new_key_works() -> bool:
        old = httpx.post(service.scoring_uri, json=SAMPLE, headers={"Authorization": f"Bearer {primary}"})
        new = httpx.post(
            service.scoring_uri, json=SAMPLE, headers={"Authorization": "Bearer rotated-primary-key-000"}
        )
        return old.status_code == 401 and new.status_code == 200

    wait_until(only_new_key_works, "the front end applies the rotated key")
    kept = httpx.post(service.scoring_uri, json=SAMPLE, headers={"Authorization": f"Bearer {secondary}"})
    assert kept.status_code == 200

    # A named key with a rate limit reaches the front end through the keys Secret, no redeploy.
    generation = service.generation
    named = {"Authorization": f"Bearer {service.add_key('team-a', rate='1/min', burst=1)}"}
    wait_until(
        lambda: httpx.post(service.scoring_uri, json=SAMPLE, headers=named).status_code == 200,
        "the front end accepts the named key",
    )
    over = httpx.post(service.scoring_uri, json=SAMPLE, headers=named)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
    service.remove_key("team-a")
    wait_until(
        lambda: httpx.post(service.scoring_uri, json=SAMPLE, headers=named).status_code == 401,
        "the front end refuses the removed key",
    )
    assert service.generation == generation

    service.update(scoring_timeout_ms=30000, num_replicas=2)
    service.wait_for_deployment(timeout_sec=240)

    assert service.state == states.HEALTHY and service.observed["readyReplicas"] == 2
    assert service.run(SAMPLE) == [0, 2]


def test_an_init_that_raises_is_entry_script_init_failed_with_the_traceback(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    ws, _ = cluster
    weights = tmp_path / "w.txt"
    weights.write_text("x")
    service = _deploy(ws, "bad-init", Model.register(ws, str(weights), "w"), FAILING_INIT, tmp_path)

    with pytest.raises(WebserviceException) as caught:
        service.wait_for_deployment(timeout_sec=240)

    assert service.error["code"] == states.ENTRY_SCRIPT_INIT_FAILED
    evidence = next(d["message"] for d in service.error["details"] if d["code"] == "LogTail")
    assert "the model file is corrupt (raised on purpose by the test)" in evidence
    assert "EntryScriptInitFailed" in str(caught.value)
    assert "raised on purpose" in service.get_logs()


def test_get_logs_of_a_restarted_replica_includes_its_previous_run(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    """The first run's init() raises, the second waits without a word: the reason for the restart
    is only in the previous run's log, which get_logs shows after the current one. (The simulated
    node runs pods as host processes, so the script can leave a marker on the host's disk.)"""
    ws, _ = cluster
    weights = tmp_path / "w.txt"
    weights.write_text("x")
    marker = tmp_path / "first-run-done"
    script = (
        "import pathlib, time\n\n\ndef init():\n"
        f"    marker = pathlib.Path({str(marker)!r})\n"
        "    if not marker.exists():\n"
        "        marker.write_text('x')\n"
        "        raise RuntimeError('the first run fails (raised on purpose by the test)')\n"
        "    time.sleep(600)\n\n\ndef run(raw_data):\n    return raw_data\n"
    )
    service = _deploy(ws, "restarted", Model.register(ws, str(weights), "w"), script, tmp_path)

    deadline = time.monotonic() + 180
    logs = service.get_logs()
    while "log of its previous run" not in logs and time.monotonic() < deadline:
        time.sleep(1)
        logs = service.get_logs()

    previous = logs.partition("log of its previous run")[2]
    assert "raised on purpose" in previous, logs
    service.delete()


def test_doctor_passes_on_a_serving_cluster(cluster: tuple[Workspace, KubernetesTarget]) -> None:
    ws, _ = cluster

    result = modelport("doctor", "kubernetes", "-ct", "prod", "-w", ws.name, "--timeout", "240")

    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["ok"] * 7, result.stdout
    assert "20 requests" in result.stdout and "p50" in result.stdout
    assert Model.list(ws) == [] and Webservice.list(ws) == []


def test_the_raw_http_notebook_port_with_token_auth_serves_on_the_cluster(
    cluster: tuple[Workspace, KubernetesTarget], tmp_path: Path
) -> None:
    """Issue 6's raw-HTTP, token-auth notebook port, written with the facade's imports only."""
    from modelport.azureml.core import Model as AmlModel
    from modelport.azureml.core import Workspace as AmlWorkspace
    from modelport.azureml.core.model import InferenceConfig as AmlInferenceConfig
    from modelport.azureml.core.webservice import AksWebservice
    from tests.azureml.test_notebook_aks import RAW_SCORE

    ws = AmlWorkspace.get(cluster[0].name)
    source = tmp_path / "raw"
    source.mkdir()
    (source / "score.py").write_text(RAW_SCORE)
    inference_config = AmlInferenceConfig(entry_script="score.py", source_directory=str(source))
    config = AksWebservice.deploy_configuration(
        cpu_cores=0.1, memory_gb=0.5, num_replicas=1, auth_enabled=False, token_auth_enabled=True
    )

    service = AmlModel.deploy(ws, "raw-token", [], inference_config, config, deployment_target="prod")
    service.wait_for_deployment(timeout_sec=240)

    assert service.state == "Healthy" and service.compute_type == "AKS" and service.token_auth_enabled
    assert service.run({"hello": "world"}) == {"length": 18, "body": {"hello": "world"}}
    token = service.get_access_token()
    echoed = httpx.get(
        service.scoring_uri, params={"q": "ping"}, headers={"Authorization": f"Bearer {token.access_token}"}
    )
    assert echoed.status_code == 200 and echoed.json() == {"echo": "ping"}
    refused = httpx.get(service.scoring_uri, headers={"Authorization": f"Bearer {service.get_keys()[0]}"})
    assert refused.status_code == 401  # keys do not open a token-auth service

    # Revocation through the facade's service object (a modelport extension): old tokens refused.
    service.revoke_tokens()

    def only_new_tokens_work() -> bool:
        ping = {"q": "ping"}
        old = httpx.get(
            service.scoring_uri, params=ping, headers={"Authorization": f"Bearer {token.access_token}"}
        )
        fresh = service.get_access_token().access_token
        new = httpx.get(service.scoring_uri, params=ping, headers={"Authorization": f"Bearer {fresh}"})
        return old.status_code == 401 and new.status_code == 200

    wait_until(only_new_tokens_work, "the front end refuses tokens signed with the old secret")
