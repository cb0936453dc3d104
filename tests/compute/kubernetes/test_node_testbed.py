"""Tier 1: the simulated node runs pods as real local processes in namespaces labelled for it.

Everything goes through the real control plane: a Deployment's pod is created by the real
controllers and placed by the real scheduler, then the node runs its init containers and
containers (tests/compute/kubernetes/kubelet.py), writes their statuses, serves their logs to the apiserver,
and stops them when the pod is deleted.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret, ServiceAccount

from modelport.compute.kubernetes.diagnose import MODEL_FETCH_FAILED, diagnose
from modelport.service import states
from tests.compute.kubernetes.kubelet import process_stat
from tests.compute.kubernetes.node import (
    FAULT_ANNOTATION,
    RUN_LABEL,
    RUN_PROCESS,
    SimulatedNode,
    run_processes_in,
)
from tests.compute.kubernetes.testbed import ADMIN_TOKEN, ControlPlane
from tests.servers import wait_until

pytestmark = pytest.mark.k8s

# Generous: the machine is shared, and `python -m modelport serve` starts a worker process.
DEADLINE_S = 90.0
SCORE = (
    "import os\n\n\n"
    "def init():\n"
    '    print("init() ran in", os.getcwd(), flush=True)\n\n\n'
    "def run(raw):\n"
    '    return {"echo": raw}\n'
)


def _service_account_ready(kube: Client, namespace: str) -> None:
    """Wait for the namespace's ``default`` ServiceAccount: admission refuses bare pods until it exists."""

    def exists() -> bool:
        try:
            kube.get(ServiceAccount, "default", namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            return False
        return True

    wait_until(exists, f"the default ServiceAccount of {namespace}", DEADLINE_S)


@pytest.fixture
def run_ns(kube: Client, namespace: str, node: SimulatedNode) -> str:
    """A fresh namespace whose pods the simulated node runs as processes."""
    run_processes_in(kube, namespace)
    _service_account_ready(kube, namespace)
    return namespace


@pytest.fixture
def plain_ns(kube: Client) -> Iterator[str]:
    """A second fresh namespace, not labelled: its pods stay status-only."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    _service_account_ready(kube, name)
    yield name
    kube.delete(Namespace, name)


def _pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": name},
            "spec": {"containers": containers, "automountServiceAccountToken": False, **spec},
        }
    )


def _get(kube: Client, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(Pod, name, namespace=namespace).to_dict()


def _container(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    found = [s for s in (pod.get("status") or {}).get(key) or [] if s["name"] == name]
    return found[0] if found else {}


def _condition(pod: dict[str, Any], kind: str) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition["type"] == kind:
            return str(condition["status"])
    return None


def _log(kube: Client, namespace: str, pod: str, container: str, **options: Any) -> str:
    return "".join(kube.log(pod, namespace=namespace, container=container, **options))


def _raw_log(plane: ControlPlane, namespace: str, pod: str, **params: str) -> str:
    """GET pods/log with parameters lightkube's ``Client.log`` lacks (``previous``)."""
    url = f"{plane.server}/api/v1/namespaces/{namespace}/pods/{pod}/log?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    context = ssl.create_default_context(cafile=str(plane.work_dir / "certs" / "apiserver.crt"))
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return response.read().decode()


def _gone(pid: int, start_time: int) -> bool:
    stat = process_stat(pid)
    return stat is None or stat[2] != start_time  # absent, or the pid now names another process


def _mount_points(pid: int | str) -> set[str]:
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8") as handle:
        return {line.split()[4] for line in handle}


def _mount_sources(pid: int | str) -> str:
    return Path(f"/proc/{pid}/mountinfo").read_text()


def test_deployment_with_init_container_serves_on_its_pod_ip(
    kube: Client, run_ns: str, node: SimulatedNode
) -> None:
    kube.create(
        ConfigMap.from_dict({"metadata": {"name": "source"}, "data": {"f0": SCORE}}), namespace=run_ns
    )
    app = {"name": "app", "mountPath": "/var/azureml-app"}
    prepare = (
        "import shutil; shutil.copy('/var/modelport/source/score.py', '/var/azureml-app/score.py'); "
        "print('prepared score.py', flush=True)"
    )
    serve = ["python", "-m", "modelport", "serve", "--entry_script", "/var/azureml-app/score.py"]
    serve += ["--model_dir", "/var/azureml-app", "--port", "5001", "--host", "0.0.0.0"]
    template = {
        "metadata": {"labels": {"app": "echo"}},
        "spec": {
            "automountServiceAccountToken": False,
            "initContainers": [
                {
                    "name": "prepare",
                    "image": "modelport/runtime:test",
                    "command": ["python", "-c", prepare],
                    "volumeMounts": [
                        app,
                        {"name": "source", "mountPath": "/var/modelport/source", "readOnly": True},
                    ],
                }
            ],
            "containers": [
                {
                    "name": "scorer",
                    "image": "modelport/runtime:test",
                    "command": serve,
                    "workingDir": "/var/azureml-app",
                    "env": [{"name": "AML_APP_ROOT", "value": "/var/azureml-app"}],
                    "ports": [{"name": "http", "containerPort": 5001, "protocol": "TCP"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/health/ready", "port": "http"},
                        "periodSeconds": 1,
                    },
                    "volumeMounts": [app],
                }
            ],
            "volumes": [
                {"name": "app", "emptyDir": {}},
                {
                    "name": "source",
                    "configMap": {"name": "source", "items": [{"key": "f0", "path": "score.py"}]},
                },
            ],
        },
    }
    kube.create(
        Deployment.from_dict(
            {
                "metadata": {"name": "echo"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "echo"}}, "template": template},
            }
        ),
        namespace=run_ns,
    )

    wait_until(
        lambda: (kube.get(Deployment, "echo", namespace=run_ns).status.readyReplicas or 0) == 1,
        "the Deployment's replica to be ready",
        DEADLINE_S,
    )

    (pod,) = [p.to_dict() for p in kube.list(Pod, namespace=run_ns, labels={"app": "echo"})]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    assert ip.startswith("127.0.") and ip != "127.0.0.1"
    assert pod["status"]["podIPs"] == [{"ip": ip}] and pod["status"]["phase"] == "Running"
    assert _condition(pod, "Initialized") == _condition(pod, "Ready") == "True"
    prepared = _container(pod, "prepare", init=True)
    assert (
        prepared["state"]["terminated"]["exitCode"] == 0
        and prepared["state"]["terminated"]["reason"] == "Completed"
    )
    assert _container(pod, "scorer")["ready"] is True
    request = urllib.request.Request(f"http://{ip}:5001/score", data=b"hello", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"echo": "hello"}
    assert "prepared score.py" in _log(kube, run_ns, name, "prepare")
    scorer_log = _log(kube, run_ns, name, "scorer")
    assert "init() ran in /var/azureml-app" in scorer_log
    assert "modelport scoring server listening" in scorer_log
    assert _log(kube, run_ns, name, "scorer", tail_lines=1).count("\n") == 1


def test_crashing_container_backs_off_and_keeps_its_output(
    kube: Client, run_ns: str, node: SimulatedNode, control_plane: ControlPlane
) -> None:
    crash = "import sys; print('crashing on purpose', flush=True); sys.exit(1)"
    kube.create(
        _pod("crasher", [{"name": "main", "image": "any", "command": ["python", "-c", crash]}]),
        namespace=run_ns,
    )

    def backing_off() -> bool:
        status = _container(_get(kube, run_ns, "crasher"), "main")
        return (
            status.get("restartCount", 0) >= 2
            and (status["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        )

    wait_until(backing_off, "the container to crash twice and back off", DEADLINE_S)

    pod = _get(kube, run_ns, "crasher")
    status = _container(pod, "main")
    terminated = status["lastState"]["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error" and terminated["finishedAt"]
    assert pod["status"]["phase"] == "Running" and _condition(pod, "Ready") == "False"
    found = diagnose([pod])
    assert found is not None and found[1].code == states.CRASH_LOOP_BACK_OFF
    assert _log(kube, run_ns, "crasher", "main") == "crashing on purpose\n"
    assert "crashing on purpose" in "".join(_log(kube, run_ns, "crasher", "main", follow=True))
    assert (
        _raw_log(control_plane, run_ns, "crasher", container="main", previous="true")
        == "crashing on purpose\n"
    )


def test_failing_init_container_keeps_the_pod_pending(kube: Client, run_ns: str, node: SimulatedNode) -> None:
    fail = "import sys; print('cannot fetch the model', flush=True); sys.exit(3)"
    pod = _pod(
        "initfail",
        [{"name": "main", "image": "any", "command": ["python", "-c", "print('never')"]}],
        initContainers=[{"name": "fetch-models", "image": "any", "command": ["python", "-c", fail]}],
    )
    kube.create(pod, namespace=run_ns)

    wait_until(
        lambda: (
            _container(_get(kube, run_ns, "initfail"), "fetch-models", init=True).get("restartCount", 0) >= 1
        ),
        "the init container to be restarted",
        DEADLINE_S,
    )

    pod_dict = _get(kube, run_ns, "initfail")
    init = _container(pod_dict, "fetch-models", init=True)
    assert init["lastState"]["terminated"]["exitCode"] == 3
    assert pod_dict["status"]["phase"] == "Pending" and _condition(pod_dict, "Initialized") == "False"
    assert _container(pod_dict, "main")["state"] == {"waiting": {"reason": "PodInitializing"}}
    found = diagnose([pod_dict])
    assert found is not None and found[1].code == MODEL_FETCH_FAILED
    assert "cannot fetch the model" in _log(kube, run_ns, "initfail", "fetch-models")
    with pytest.raises(ApiError) as caught:
        _log(kube, run_ns, "initfail", "main")
    assert caught.value.status.code == 400


def test_deleting_a_pod_kills_its_processes_and_leaves_no_mount(
    kube: Client, run_ns: str, node: SimulatedNode
) -> None:
    # Ignores SIGTERM and has a child: the node must escalate to SIGKILL and get the child too.
    stubborn = (
        "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "child = subprocess.Popen(['sleep', '300']); "
        "open('/var/modelport/sim-data/child', 'w').write(str(child.pid)); "
        "print('holding on', flush=True); time.sleep(300)"
    )
    container = {
        "name": "main",
        "image": "any",
        "command": ["python", "-c", stubborn],
        "volumeMounts": [{"name": "data", "mountPath": "/var/modelport/sim-data"}],
    }
    kube.create(
        _pod(
            "stubborn",
            [container],
            volumes=[{"name": "data", "emptyDir": {}}],
            terminationGracePeriodSeconds=1,
        ),
        namespace=run_ns,
    )
    wait_until(
        lambda: _condition(_get(kube, run_ns, "stubborn"), "Ready") == "True",
        "the pod to be Ready",
        DEADLINE_S,
    )
    run = node.process_pod(run_ns, "stubborn")
    assert run is not None
    wait_until(lambda: (run.root / "volumes" / "data" / "child").is_file(), "the child to start", DEADLINE_S)
    child = int((run.root / "volumes" / "data" / "child").read_text())
    main = run.main_pid("main")
    assert main is not None
    pids = run.pids()
    assert {main, child} <= set(pids) and len(pids) >= 3  # launcher, python, sleep
    started = {pid: stat[2] for pid in pids if (stat := process_stat(pid)) is not None}
    # The volume is mounted in the container's own mount namespace, not in this one.
    assert "/var/modelport/sim-data" in _mount_points(main) and str(run.root) in _mount_sources(main)
    assert str(run.root) not in _mount_sources("self")

    kube.delete(Pod, "stubborn", namespace=run_ns)

    def deleted() -> bool:
        try:
            kube.get(Pod, "stubborn", namespace=run_ns)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    wait_until(deleted, "the pod's deletion to be confirmed", DEADLINE_S)
    assert [pid for pid, start in started.items() if not _gone(pid, start)] == []
    assert not run.root.exists()
    assert str(run.root) not in _mount_sources("self")
    assert node.process_pod(run_ns, "stubborn") is None


def test_env_from_a_secret_reaches_the_process(kube: Client, run_ns: str, node: SimulatedNode) -> None:
    show = (
        "import os; [print(f'{k}={os.environ.get(k)}') for k in "
        "('GREETING', 'APP_MODE', 'SHOUT', 'POD_IP', 'MODELPORT_K8S_BIN')]"
    )
    container = {
        "name": "main",
        "image": "any",
        "command": ["python", "-c", show],
        "envFrom": [{"secretRef": {"name": "app-env"}}],
        "env": [
            {"name": "APP_MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}},
            {"name": "SHOUT", "value": "$(GREETING)!"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    }
    kube.create(_pod("envs", [container], restartPolicy="Never"), namespace=run_ns)
    kube.create(
        ConfigMap.from_dict({"metadata": {"name": "app-config"}, "data": {"mode": "testing"}}),
        namespace=run_ns,
    )

    # The Secret does not exist yet: the container cannot be configured, as on a real node.
    wait_until(
        lambda: (
            (_container(_get(kube, run_ns, "envs"), "main").get("state", {}).get("waiting") or {}).get(
                "reason"
            )
            == "CreateContainerConfigError"
        ),
        "CreateContainerConfigError while the Secret is missing",
        DEADLINE_S,
    )
    secret = base64.b64encode(b"hello from a secret").decode()
    kube.create(
        Secret.from_dict({"metadata": {"name": "app-env"}, "data": {"GREETING": secret}}), namespace=run_ns
    )
    wait_until(
        lambda: _get(kube, run_ns, "envs")["status"]["phase"] == "Succeeded", "the pod to succeed", DEADLINE_S
    )

    pod = _get(kube, run_ns, "envs")
    terminated = _container(pod, "main")["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    lines = _log(kube, run_ns, "envs", "main").splitlines()
    assert lines == [
        "GREETING=hello from a secret",
        "APP_MODE=testing",
        "SHOUT=hello from a secret!",
        f"POD_IP={pod['status']['podIP']}",
        "MODELPORT_K8S_BIN=None",  # nothing of the test's environment leaks into containers
    ]


def test_fault_annotation_still_wins_and_other_namespaces_stay_status_only(
    kube: Client, run_ns: str, plain_ns: str, node: SimulatedNode
) -> None:
    container = {"name": "main", "image": "any", "command": ["python", "-c", "print('ran')"]}
    faulty = _pod("faulty", [container])
    faulty.metadata.annotations = {FAULT_ANNOTATION: "crash-loop"}
    kube.create(faulty, namespace=run_ns)
    kube.create(_pod("plain", [container]), namespace=plain_ns)

    wait_until(
        lambda: _container(_get(kube, run_ns, "faulty"), "main").get("restartCount") == 3,
        "the injected crash loop",
        DEADLINE_S,
    )
    wait_until(
        lambda: _condition(_get(kube, plain_ns, "plain"), "Ready") == "True",
        "the status-only pod",
        DEADLINE_S,
    )
    assert node.process_pod(run_ns, "faulty") is None and node.process_pod(plain_ns, "plain") is None
    assert _get(kube, plain_ns, "plain")["status"]["podIP"].startswith("192.0.2.")
    with pytest.raises(ApiError) as caught:
        _log(kube, plain_ns, "plain", "main")
    assert RUN_LABEL in str(caught.value.status) and RUN_PROCESS in str(caught.value.status)
