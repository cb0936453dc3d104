"""Tier 1: the in-cluster front end (``python -m modelport.compute.kubernetes.frontend``) on the testbed.

The front end runs as a real subprocess with the credentials of its own ServiceAccount, bound to
the Roles attach installs, so every test also proves those permissions sufficient. No kubelet
runs, so the tests make replicas real themselves: each service's pods are bound (``nodeName``) to
a parked Node that neither the scheduler nor the simulated node touches, a real ``modelport
serve`` listens on a loopback address (127.0.0.x, one per pod, on the port the pod declares), and
the pod's status is patched Running and Ready with that address, as a kubelet would report it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Namespace, Node, Pod, Secret, ServiceAccount
from lightkube.types import CascadeType, PatchType

from modelport.compute.kubernetes import election as election_rules
from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.apply import apply_all, apply_service
from modelport.frontend.auth import issue_token
from modelport.frontend.routes import KeyLimits, NamedKey, key_digest
from modelport.service.spec import ServiceSpec
from tests.compute.kubernetes.specs import make_inputs, make_spec
from tests.compute.kubernetes.testbed import ControlPlane
from tests.servers import free_port, wait_until

pytestmark = pytest.mark.k8s

DEADLINE_S = 90.0  # generous: two shared cores also run other engineers' tests
SIGNING_KEY = "s" * 48
ENTRY_SCRIPT = """
import json
import os
import time


def init():
    pass


def run(raw):
    data = json.loads(raw) if raw else {}
    time.sleep(data.get("sleep", 0))
    return {"replica": os.environ["REPLICA_NAME"], "got": data}
"""
_addresses = itertools.count(10)  # 127.0.0.10, .11, …: one loopback address per pod (at most 245)


def loopback_address(port: int) -> str:
    """A loopback address that no other pod of this module uses and where ``port`` is free."""
    for _ in range(50):
        address = f"127.0.0.{next(_addresses)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue  # taken there (another test run, the process-running kubelet): next one
            return address
    raise AssertionError(f"no loopback address with port {port} free")


# -- the front end's identity -----------------------------------------------------------------
@pytest.fixture
def frontend_kubeconfig(
    kube: Client, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> Iterator[Path]:
    """A kubeconfig with the token of the front end's ServiceAccount, as attach installs it."""
    cluster = fm.ClusterInputs(services_namespace=namespace, system_namespace=f"{namespace}-sys")
    installed = [fm.namespace(cluster.system_namespace), fm.frontend_service_account(cluster)]
    apply_all(kube, [*installed, *fm.frontend_roles(cluster)])
    # On 1.20 the token controller gives every ServiceAccount a token Secret.
    account: list[Any] = []

    def has_token() -> bool:
        found = kube.get(ServiceAccount, fm.FRONTEND_NAME, namespace=cluster.system_namespace)
        account[:] = found.secrets or []
        return bool(account)

    wait_until(has_token, "the front end's ServiceAccount token", DEADLINE_S)
    secret = kube.get(Secret, account[0].name, namespace=cluster.system_namespace)
    token = base64.b64decode(secret.data["token"]).decode()
    path = tmp_path / "frontend.kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: testbed, cluster: {{server: '{control_plane.server}', "
        f"certificate-authority: '{control_plane.work_dir / 'certs' / 'apiserver.crt'}'}}}}]\n"
        f"users: [{{name: frontend, user: {{token: '{token}'}}}}]\n"
        "contexts: [{name: frontend, context: {cluster: testbed, user: frontend}}]\n"
        "current-context: frontend\n"
    )
    yield path
    kube.delete(Namespace, cluster.system_namespace)


# -- the front end process --------------------------------------------------------------------
@dataclass
class FrontEndProcess:
    """The front end subprocess and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL of the front end."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the front end wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def score(
        self, service: str, body: dict[str, Any] | None = None, auth: str | None = None
    ) -> httpx.Response:
        """POST to a service's scoring URL through the front end."""
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        return httpx.post(
            f"{self.url}/api/v1/service/{service}/score", json=body or {}, headers=headers, timeout=60.0
        )


@contextlib.contextmanager
def running_frontend(
    kubeconfig: Path, namespace: str, log_path: Path, extra: tuple[str, ...] = ()
) -> Iterator[FrontEndProcess]:
    """A front end for ``namespace``, answering ``GET /``; stopped with SIGTERM, which must exit 0
    (unless the test killed it)."""
    port = free_port()
    argv = [sys.executable, "-m", "modelport.compute.kubernetes.frontend", "--kubeconfig", str(kubeconfig)]
    argv += ["--namespace", namespace, "--port", str(port), "--host", "127.0.0.1", *extra]
    # Short scale-down delay, so that the autoscaling test sees a scale-down too.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MODELPORT_AUTOSCALE_SCALE_DOWN_DELAY_S": "2"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    running = FrontEndProcess(process, port, log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the front end exited with {process.returncode}:\n{running.log()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(running.url + "/", timeout=2.0).status_code == 200
        return False

    try:
        wait_until(healthy, "the front end to answer GET /", DEADLINE_S)
        yield running
    finally:
        killed = process.poll() == -signal.SIGKILL
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        print(running.log())  # shown by pytest for failing tests
    assert killed or code == 0, f"the front end did not stop cleanly ({code}):\n{running.log()}"


@pytest.fixture
def frontend(frontend_kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[FrontEndProcess]:
    """The front end for ``namespace`` (no leader election: it decides alone)."""
    with running_frontend(frontend_kubeconfig, namespace, tmp_path / "frontend.log") as running:
        yield running


# -- replicas ---------------------------------------------------------------------------------
@dataclass
class Replicas:
    """Services whose pods are parked on a node nobody runs, made ready by hand with real servers."""

    kube: Client
    namespace: str
    node: str
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    def deploy(self, name: str, spec_update: dict[str, Any] | None = None, **knobs: Any) -> ServiceSpec:
        """Apply a service's objects the way the driver will, its pods bound to the parked node
        (``spec_update``: fields of the spec beyond the deployment knobs, e.g. named keys)."""
        spec = make_spec(name, **knobs).model_copy(update=spec_update or {})
        port = self.ports.setdefault(name, free_port())
        # Only what the front end reads: the Deployment and its keys Secret (the Service and
        # ConfigMaps serve pods and cluster networking, which the testbed does not run).
        manifests = [
            manifest
            for manifest in m.service_manifests(spec, make_inputs(namespace=self.namespace))
            if manifest["kind"] in ("Deployment", "Secret")
        ]
        pod_spec = manifests[0]["spec"]["template"]["spec"]
        pod_spec["nodeName"] = self.node  # no scheduler, no simulated kubelet takes these pods
        pod_spec["containers"][0]["ports"][0]["containerPort"] = port
        apply_service(self.kube, manifests)
        return spec

    def pods(self, name: str) -> list[Pod]:
        """The service's pods, oldest first."""
        found = self.kube.list(Pod, namespace=self.namespace, labels={m.LABEL_SERVICE: name})
        return sorted(found, key=lambda p: (p.metadata.creationTimestamp, p.metadata.name))

    def start(self, name: str) -> Pod:
        """Run a real scoring server for the service's first pod, report the pod Ready, return it."""
        pods: list[Pod] = []

        def created() -> bool:
            pods[:] = self.pods(name)
            return bool(pods)

        wait_until(created, f"a pod of {name}", DEADLINE_S)
        pod = pods[0]
        port = self.ports[name]
        address = loopback_address(port)
        app = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        (app / "score.py").write_text(textwrap.dedent(ENTRY_SCRIPT))
        (app / "model").mkdir()
        argv = [sys.executable, "-m", "modelport", "serve", "--entry_script", "score.py"]
        argv += ["--model_dir", str(app / "model"), "--port", str(port), "--host", address]
        env = {
            **os.environ,
            "AML_APP_ROOT": str(app),
            "REPLICA_NAME": pod.metadata.name,
            "PYTHONUNBUFFERED": "1",
        }
        with (app / "server.log").open("wb") as log_file:
            process = subprocess.Popen(
                argv, cwd=app, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"modelport serve exited:\n{(app / 'server.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://{address}:{port}/", timeout=2.0).status_code == 200
            return False

        wait_until(answers, f"modelport serve on {address}:{port}", DEADLINE_S)
        self.set_ready(pod, address, True)
        return self.kube.get(Pod, pod.metadata.name, namespace=self.namespace)

    def set_ready(self, pod: Pod, address: str, ready: bool) -> None:
        """Report the pod Running with ``address``, Ready or not (the kubelet's status, by hand)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        flag = "True" if ready else "False"
        status = {
            "phase": "Running",
            "podIP": address,
            "podIPs": [{"ip": address}],
            "hostIP": "192.0.2.1",
            "conditions": [
                {"type": kind, "status": value, "lastTransitionTime": now}
                for kind, value in (
                    ("PodScheduled", "True"),
                    ("Initialized", "True"),
                    ("ContainersReady", flag),
                    ("Ready", flag),
                )
            ],
        }
        meta = pod.metadata
        self.kube.patch(
            Pod.Status, meta.name, {"status": status}, namespace=meta.namespace, patch_type=PatchType.MERGE
        )

    def stop(self) -> None:
        """Stop every scoring server."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def replicas(kube: Client, namespace: str, tmp_path: Path) -> Iterator[Replicas]:
    """Replicas made by hand on a parked Node (which must exist: the pod garbage collector deletes
    pods bound to a node that does not). The Node has no Ready condition, so it adds no capacity."""
    node = f"parked-{uuid.uuid4().hex[:8]}"
    kube.create(Node(metadata=ObjectMeta(name=node)))
    made = Replicas(kube, namespace, node, tmp_path)
    try:
        yield made
    finally:
        made.stop()
        kube.delete(Node, node)


def scale_of(kube: Client, namespace: str, name: str) -> int:
    """The Deployment's replica count as the scale subresource reports it."""
    return int(kube.get(Deployment.Scale, name, namespace=namespace).spec.replicas)


def autoscale_events(kube: Client, namespace: str, name: str) -> list[Event]:
    """The Autoscale Events recorded on the service's Deployment."""
    return [
        e
        for e in kube.list(Event, namespace=namespace)
        if e.reason == "Autoscale" and e.involvedObject.kind == "Deployment" and e.involvedObject.name == name
    ]


def eventually_status(
    frontend: FrontEndProcess, service: str, code: int, auth: str | None = None
) -> httpx.Response:
    """Poll scoring through the front end until it answers ``code``; return that answer."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers[:] = [frontend.score(service, {"x": 1}, auth)]
        return answers[0].status_code == code

    try:
        wait_until(answered, f"{service} to answer {code}", DEADLINE_S)
    except AssertionError as exc:
        last = answers[0] if answers else None
        raise AssertionError(f"{exc}; last answer {last and last.status_code} {last and last.text}") from None
    return answers[0]


# -- tests ------------------------------------------------------------------------------------
def test_keys_readiness_rotation_and_removal(
    kube: Client, namespace: str, replicas: Replicas, frontend: FrontEndProcess
) -> None:
    spec = replicas.deploy("iris-svc", autoscale_enabled=False, num_replicas=1)
    keys = spec.deployment.primary_key, spec.deployment.secondary_key
    assert frontend.score("iris-svc", auth=keys[0]).status_code in (404, 503)  # no ready replica yet

    pod = replicas.start("iris-svc")
    answer = eventually_status(frontend, "iris-svc", 200, keys[0])

    assert answer.json() == {"replica": pod.metadata.name, "got": {"x": 1}}
    assert frontend.score("iris-svc", auth=keys[1]).status_code == 200
    assert frontend.score("iris-svc", auth="not-the-key").status_code == 401
    assert frontend.score("iris-svc").status_code == 401
    unknown = frontend.score("no-such-svc", auth=keys[0])
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Service no-such-svc not found")
    assert httpx.get(frontend.url + "/").json() == {"status": "Healthy", "services": 1}

    # Key rotation: the driver re-applies the keys Secret; no restart, old key refused.
    rotated = replicas.deploy(
        "iris-svc",
        autoscale_enabled=False,
        num_replicas=1,
        primary_key="rotated-" + "p" * 24,
        secondary_key=keys[1],
    )
    eventually_status(frontend, "iris-svc", 200, rotated.deployment.primary_key)
    assert frontend.score("iris-svc", auth=keys[0]).status_code == 401

    # Autoscaling off: apply owns the count. Someone else scales by hand; the front end, busy
    # with the table changes below, neither reverts it nor records a decision.
    kube.patch(Deployment.Scale, "iris-svc", {"spec": {"replicas": 2}}, namespace=namespace)

    # The pod stops being ready: it leaves the table.
    replicas.set_ready(pod, pod.status.podIP, False)
    unready = eventually_status(frontend, "iris-svc", 503, keys[1])
    assert unready.json()["message"] == "No ready replicas for service iris-svc"

    assert scale_of(kube, namespace, "iris-svc") == 2
    assert autoscale_events(kube, namespace, "iris-svc") == []
    assert "autoscale" not in frontend.log() and "Scaled" not in frontend.log()

    # Deleting the Deployment removes the route.
    kube.delete(Deployment, "iris-svc", namespace=namespace, cascade=CascadeType.FOREGROUND)
    gone = eventually_status(frontend, "iris-svc", 404, keys[1])
    assert gone.json()["message"] == "Service iris-svc not found"
    log = frontend.log()
    assert "service iris-svc added" in log and "service iris-svc removed" in log


def test_token_auth_uses_the_service_token_secret(replicas: Replicas, frontend: FrontEndProcess) -> None:
    spec = replicas.deploy("token-svc", autoscale_enabled=False, num_replicas=1, token_auth_enabled=True)
    replicas.start("token-svc")
    secret = bytes.fromhex(spec.token_secret)
    token = issue_token(secret, "token-svc").access_token

    eventually_status(frontend, "token-svc", 200, token)

    assert frontend.score("token-svc", auth=issue_token(secret, "other-svc").access_token).status_code == 401
    assert (
        frontend.score("token-svc", auth=issue_token(b"x" * 32, "token-svc").access_token).status_code == 401
    )
    assert (
        frontend.score("token-svc", auth=spec.deployment.primary_key).status_code == 401
    )  # keys do not apply


def test_named_key_limits_and_token_revocation_through_the_keys_secret(
    kube: Client, namespace: str, replicas: Replicas, frontend: FrontEndProcess
) -> None:
    """What ``add_key``, ``remove_key`` and ``revoke_tokens`` write (the keys Secret, re-applied as
    the driver does) takes effect in the in-cluster front end without touching the Deployment."""
    named_key = "named-" + "k" * 30
    one_per_100_s = NamedKey("team-a", key_digest(named_key), KeyLimits(rate=0.01, burst=2))
    spec = replicas.deploy(
        "keyed-svc", {"named_keys": (one_per_100_s,)}, autoscale_enabled=False, num_replicas=1
    )
    replicas.start("keyed-svc")
    eventually_status(frontend, "keyed-svc", 200, spec.deployment.primary_key)
    answers = [frontend.score("keyed-svc", auth=named_key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "100"
    assert "Rate limit exceeded for key team-a" in answers[2].json()["message"]
    metrics = httpx.get(frontend.url + "/metrics").text
    assert 'key="team-a",outcome="rate_limited",service="keyed-svc"} 1.0' in metrics
    generation = kube.get(Deployment, "keyed-svc", namespace=namespace).metadata.generation
    replicas.deploy("keyed-svc", autoscale_enabled=False, num_replicas=1)  # the key removed
    eventually_status(frontend, "keyed-svc", 401, named_key)

    token_spec = replicas.deploy(
        "token-svc", autoscale_enabled=False, num_replicas=1, token_auth_enabled=True
    )
    replicas.start("token-svc")
    old_token = issue_token(bytes.fromhex(token_spec.token_secret), "token-svc").access_token
    eventually_status(frontend, "token-svc", 200, old_token)
    revoked = replicas.deploy(
        "token-svc",
        {"token_secret": "cd" * 32},
        autoscale_enabled=False,
        num_replicas=1,
        token_auth_enabled=True,
    )
    refused = eventually_status(frontend, "token-svc", 401, old_token)
    assert refused.json()["message"].startswith("Invalid token")
    new_token = issue_token(bytes.fromhex(revoked.token_secret), "token-svc").access_token
    assert frontend.score("token-svc", auth=new_token).status_code == 200
    # Neither change made a new Deployment generation: the replicas were not restarted.
    assert kube.get(Deployment, "keyed-svc", namespace=namespace).metadata.generation == generation


def test_autoscaling_scales_the_deployment_through_the_scale_subresource(
    kube: Client, namespace: str, replicas: Replicas, frontend: FrontEndProcess
) -> None:
    replicas.deploy(
        "busy-svc",
        auth_enabled=False,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=3,
        autoscale_refresh_seconds=1,
        replica_max_concurrent_requests=1,
        max_request_wait_time=30_000,
    )
    replicas.start("busy-svc")
    eventually_status(frontend, "busy-svc", 200)
    assert scale_of(kube, namespace, "busy-svc") == 1

    answers: list[int] = []

    def slow_request() -> None:
        answers.append(frontend.score("busy-svc", {"sleep": 2}).status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: scale_of(kube, namespace, "busy-svc") > 1, "a scale-up of busy-svc", DEADLINE_S)
    finally:
        for thread in threads:
            thread.join(timeout=DEADLINE_S)
    assert answers == [200] * 4  # queued, not refused, while the one ready replica worked through them

    uid = kube.get(Deployment, "busy-svc", namespace=namespace).metadata.uid
    events = autoscale_events(kube, namespace, "busy-svc")  # listed by name: random order
    assert events and all(e.involvedObject.uid == uid and e.type == "Normal" for e in events)
    first = [e.message for e in events if e.message.startswith("Scaled from 1 to ")]
    assert len(first) == 1 and "above target 70%" in first[0], [e.message for e in events]

    # Idle again: after the (shortened) scale-down delay the count returns to the minimum.
    wait_until(lambda: scale_of(kube, namespace, "busy-svc") == 1, "a scale-down of busy-svc", DEADLINE_S)
    assert "service busy-svc: Scaled from 1 to" in frontend.log()
    # The scale-down, logged with its reason: the front end writes the line just after the patch the
    # wait above saw, so it is waited for, not read at once.
    wait_until(
        lambda: "to 1 replicas: below target for" in frontend.log(), "the scale-down's log line", DEADLINE_S
    )


def test_sigterm_stops_listening_and_lets_requests_in_flight_finish(
    replicas: Replicas, frontend: FrontEndProcess
) -> None:
    replicas.deploy("slow-svc", auth_enabled=False, autoscale_enabled=False, num_replicas=1)
    replicas.start("slow-svc")
    eventually_status(frontend, "slow-svc", 200)
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(frontend.score("slow-svc", {"sleep": 5})))
    request.start()

    def in_flight() -> bool:
        metrics = httpx.get(frontend.url + "/metrics", timeout=10.0).text
        return 'modelport_frontend_in_flight{service="slow-svc"} 1.0' in metrics

    wait_until(in_flight, "the slow request to be in flight", DEADLINE_S)
    frontend.process.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            httpx.get(frontend.url + "/", timeout=2.0)
        except httpx.ConnectError:
            return True
        return False

    wait_until(refused, "the front end to stop accepting connections", DEADLINE_S)
    still_running = not answers
    request.join(timeout=DEADLINE_S)

    assert still_running  # the listener closed while the request was still on the replica
    assert [a.status_code for a in answers] == [200]
    assert frontend.process.wait(timeout=DEADLINE_S) == 0


# -- several front-end replicas: one leader ---------------------------------------------------
def lease_holder(kube: Client, namespace: str) -> str | None:
    """The leader Lease's holder in the front end's namespace (None: no Lease yet)."""
    try:
        lease = kube.get(Lease, fm.LEADER_LEASE_NAME, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    return lease.spec.holderIdentity if lease.spec else None


def lease_names(kube: Client, namespace: str) -> set[str]:
    """The names of the Leases in ``namespace``."""
    return {lease.metadata.name for lease in kube.list(Lease, namespace=namespace) if lease.metadata}


def test_one_of_several_front_ends_leads_and_a_killed_leader_is_replaced_under_load(
    kube: Client,
    namespace: str,
    replicas: Replicas,
    frontend_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """Two front ends with the election on, as the Deployment runs them. The load generator plays
    the Service: it spreads requests over the front ends it believes alive, and stops sending to
    one before the test kills it (the endpoints controller's part, which the testbed does not run).
    The leader dies by SIGKILL, so it cannot release the Lease: the slow path of a hand-over."""
    system = f"{namespace}-sys"
    replicas.deploy(
        "ha-svc",
        auth_enabled=False,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=3,
        autoscale_refresh_seconds=1,
        replica_max_concurrent_requests=6,
        max_request_wait_time=60_000,
    )
    replicas.start("ha-svc")
    election = ("--lease-namespace", system)
    with contextlib.ExitStack() as stack:
        running = {
            identity: stack.enter_context(
                running_frontend(
                    frontend_kubeconfig,
                    namespace,
                    tmp_path / f"{identity}.log",
                    (*election, "--identity", identity),
                )
            )
            for identity in ("fe-a", "fe-b")
        }
        wait_until(lambda: lease_holder(kube, system) in running, "a front end to hold the Lease", DEADLINE_S)
        leader = lease_holder(kube, system)
        assert leader is not None
        (follower,) = set(running) - {leader}
        wait_until(
            lambda: "leading: this replica" in running[leader].log(), "the leader to say so", DEADLINE_S
        )
        assert "leading: this replica" not in running[follower].log()
        for front in running.values():
            eventually_status(front, "ha-svc", 200)
        # Each replica reports its load in a Lease of its own, which the leader reads.
        wait_until(
            lambda: {f"{fm.FRONTEND_NAME}-load-{i}" for i in running} <= lease_names(kube, system),
            "both front ends' load reports",
            DEADLINE_S,
        )

        # Steady, bounded load: two clients, each one request at a time, over the live front ends.
        alive = list(running)
        answers: list[tuple[str, int | str]] = []
        stop = threading.Event()

        def client(index: int) -> None:
            for turn in itertools.count(index):
                if stop.is_set():
                    return
                target = alive[turn % len(alive)]
                try:
                    code: int | str = running[target].score("ha-svc", {"sleep": 0.2}).status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                answers.append((target, code))

        def started(count: int) -> Callable[[], bool]:
            return lambda: len(answers) >= count

        clients = [threading.Thread(target=client, args=(i,)) for i in range(2)]
        for thread in clients:
            thread.start()
        try:
            wait_until(started(10), "the steady load to run", DEADLINE_S)
            # At most two busy of six per replica: well within the target, whichever way it is counted.
            assert scale_of(kube, namespace, "ha-svc") == 1
            alive.remove(leader)  # the Service stops sending to the leader ...
            before = len(answers)
            running[leader].process.kill()  # ... which then dies without releasing the Lease
            killed_at = time.monotonic()
            # The follower takes over once the Lease has gone unrenewed for its duration, seen on
            # its own clock (plus up to one retry period; slack for a busy machine).
            wait_until(
                lambda: lease_holder(kube, system) == follower,
                "the follower to take the Lease over",
                election_rules.LEASE_DURATION_S + 2 * election_rules.RETRY_S + 5,
            )
            handover_s = time.monotonic() - killed_at
            wait_until(started(before + 10), "the load to go on through the survivor", DEADLINE_S)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=DEADLINE_S)
        failed = [(front, code) for front, code in answers if code != 200]
        # Only requests in flight on the killed front end may fail: at most one per client.
        assert all(front == leader for front, _ in failed), failed
        assert len(failed) <= len(clients), failed
        print(f"hand-over after the leader's death: {handover_s:.1f} s")

        # Autoscaling goes on under the new leader: eight concurrent requests need two replicas.
        survivor = running[follower]
        burst = [threading.Thread(target=lambda: survivor.score("ha-svc", {"sleep": 3})) for _ in range(8)]
        for thread in burst:
            thread.start()
        try:
            wait_until(
                lambda: scale_of(kube, namespace, "ha-svc") > 1, "a scale-up by the new leader", DEADLINE_S
            )
        finally:
            for thread in burst:
                thread.join(timeout=DEADLINE_S)
        assert "service ha-svc: Scaled from 1 to" in survivor.log()
        assert "Scaled from" not in running[leader].log()
