"""Tier 0: the in-cluster front end's routing table from Deployment, Secret and Pod objects, its
options, and how its watch recovers from a 410 Gone.

The objects are the manifests modelport applies, in the form the API returns them (the Secret's
``stringData`` as base64 ``data``, server-set uid and replicas), plus pods as a kubelet reports them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelport.compute.kubernetes import frontend as cluster_frontend
from modelport.compute.kubernetes import frontend_manifests as fm
from modelport.compute.kubernetes import manifests as m
from modelport.compute.kubernetes.objects import find
from modelport.compute.kubernetes.routes import (
    ServiceNotRoutable,
    auth_of,
    build_table,
    cluster_service,
    ready_replica,
)
from modelport.frontend.autoscaler import AutoscaleSettings
from modelport.frontend.routes import AuthPolicy, KeyLimits, NamedKey, ReplicaTarget, key_digest
from tests.compute.kubernetes.specs import make_inputs, make_spec

Obj = dict[str, Any]


def as_stored(manifest: Obj, uid: str = "d-uid", replicas: int | None = 1) -> Obj:
    """A manifest as the API server returns it: uid set, a Secret's stringData turned into base64 data."""
    stored = json.loads(json.dumps(manifest))
    stored["metadata"]["uid"] = uid
    if stored["kind"] == "Secret":
        text = stored.pop("stringData")
        stored["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in text.items()}
    if stored["kind"] == "Deployment" and replicas is not None:
        stored["spec"]["replicas"] = replicas  # the server's default when apply leaves it out
    return stored


def service_objects(
    name: str = "iris-svc", spec_update: dict[str, Any] | None = None, **knobs: Any
) -> tuple[Obj, Obj]:
    """(Deployment, keys Secret) of a service as stored."""
    spec = make_spec(name, **knobs).model_copy(update=spec_update or {})
    objects = m.service_manifests(spec, make_inputs(namespace="ml"))
    return as_stored(find(objects, "Deployment")), as_stored(find(objects, "Secret"), uid="s-uid")


def pod(
    service: str = "iris-svc",
    uid: str = "pod-1",
    ip: str | None = "10.1.0.7",
    ready: bool = True,
    deleting: bool = False,
    port: int | None = m.RUNTIME_PORT,
) -> Obj:
    """A pod of ``service`` as the kubelet reports it."""
    metadata: Obj = {"name": f"{service}-{uid}", "uid": uid, "labels": {m.LABEL_SERVICE: service}}
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    ports = [{"name": "http", "containerPort": port, "protocol": "TCP"}] if port else []
    status: Obj = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "scorer", "ports": ports}]},
        "status": status,
    }


def test_a_key_service_routes_with_its_settings_and_ready_pods() -> None:
    deployment, secret = service_objects(
        autoscale_enabled=False, num_replicas=2, replica_max_concurrent_requests=3, max_request_wait_time=900
    )
    keys = (
        base64.b64decode(secret["data"]["primaryKey"]).decode(),
        base64.b64decode(secret["data"]["secondaryKey"]).decode(),
    )

    service = cluster_service(deployment, secret, [pod(uid="b", ip="10.1.0.8"), pod(uid="a")])

    route = service.route
    assert route.name == "iris-svc"
    assert route.auth == AuthPolicy("key", keys=keys, token_secret=bytes.fromhex("ab" * 32))
    assert (route.max_concurrent_per_replica, route.max_queue_wait_ms) == (3, 900)
    assert route.scoring_timeout_ms == 60_000
    assert route.replicas == (
        ReplicaTarget("a", "http://10.1.0.7:5001"),
        ReplicaTarget("b", "http://10.1.0.8:5001"),
    )
    assert service.autoscale.enabled is False and service.autoscale.num_replicas == 2
    assert (service.replicas, service.uid) == (1, "d-uid")


def test_autoscale_settings_come_from_the_annotation() -> None:
    deployment, secret = service_objects(
        autoscale_enabled=True,
        autoscale_min_replicas=2,
        autoscale_max_replicas=5,
        autoscale_target_utilization=50,
    )

    service = cluster_service(deployment, secret, [])

    assert service.autoscale == AutoscaleSettings(
        enabled=True, min_replicas=2, max_replicas=5, target_utilization=50, refresh_seconds=1.0
    )
    assert service.route.replicas == ()


def test_token_and_no_auth_modes() -> None:
    deployment, secret = service_objects(token_auth_enabled=True)
    assert cluster_service(deployment, secret, []).route.auth.mode == "token"
    assert cluster_service(deployment, secret, []).route.auth.token_secret == bytes.fromhex("ab" * 32)

    deployment, secret = service_objects(auth_enabled=False)
    assert cluster_service(deployment, secret, []).route.auth.mode == "none"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ready": False}, None),
        ({"ip": None}, None),
        ({"deleting": True}, None),
        ({}, ReplicaTarget("pod-1", "http://10.1.0.7:5001")),
        ({"port": 43121}, ReplicaTarget("pod-1", "http://10.1.0.7:43121")),  # the declared http port
        ({"port": None}, ReplicaTarget("pod-1", "http://10.1.0.7:5001")),
        ({"ip": "fd00::7"}, ReplicaTarget("pod-1", "http://[fd00::7]:5001")),
    ],
)
def test_which_pods_are_replicas(changes: dict[str, Any], expected: ReplicaTarget | None) -> None:
    assert ready_replica(pod(**changes)) == expected


def test_build_table_matches_objects_by_service_label_and_reports_what_it_leaves_out() -> None:
    iris, iris_keys = service_objects("iris-svc")
    waiting, _ = service_objects("new-svc")  # applied, its Secret not yet
    broken, broken_keys = service_objects("broken-svc")
    broken["metadata"]["annotations"][m.ANNOTATION_FRONTEND] = "{not json"
    going, going_keys = service_objects("going-svc")
    going["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"

    table, problems = build_table(
        [iris, waiting, broken, going],
        [iris_keys, broken_keys, going_keys],
        [pod("iris-svc", "p1"), pod("other-svc", "p2"), pod("going-svc", "p3")],
    )

    assert set(table) == {"iris-svc"}
    assert [r.replica_id for r in table["iris-svc"].route.replicas] == ["p1"]
    assert "keys Secret does not exist" in problems["new-svc"]
    assert "not JSON" in problems["broken-svc"]
    assert "going-svc" not in problems  # being deleted: simply gone


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["metadata"]["annotations"].pop(m.ANNOTATION_FRONTEND), "no modelport.io/frontend"),
        (lambda s: s["metadata"]["annotations"].update({m.ANNOTATION_FRONTEND: "[]"}), "not a JSON object"),
        (lambda s: _edit_settings(s, maxQueueWaitMs="soon"), "invalid settings"),
        (lambda s: _drop(s, "scoringTimeoutMs"), "scoringTimeoutMs. is missing"),
        (lambda s: _edit_autoscaler(s, minReplicas=4, maxReplicas=2), "invalid autoscaling settings"),
    ],
)
def test_unreadable_settings_leave_the_service_out(edit: Any, message: str) -> None:
    deployment, secret = service_objects()
    edit(deployment)
    with pytest.raises(ServiceNotRoutable, match=message):
        cluster_service(deployment, secret, [])


def _settings(deployment: Obj) -> Obj:
    return json.loads(deployment["metadata"]["annotations"][m.ANNOTATION_FRONTEND])


def _store(deployment: Obj, settings: Obj) -> None:
    deployment["metadata"]["annotations"][m.ANNOTATION_FRONTEND] = json.dumps(settings)


def _edit_settings(deployment: Obj, **values: Any) -> None:
    _store(deployment, {**_settings(deployment), **values})


def _drop(deployment: Obj, key: str) -> None:
    settings = _settings(deployment)
    settings.pop(key)
    _store(deployment, settings)


def _edit_autoscaler(deployment: Obj, **values: Any) -> None:
    settings = _settings(deployment)
    settings["autoScaler"].update(values)
    _store(deployment, settings)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"authMode": "password"}, "not one of none, key, token"),
        ({"authMode": "token", "tokenSecret": "zz"}, "not hex"),
        ({"authMode": "key", "tokenSecret": "ab", "namedKeys": "[{}]"}, "namedKeys is not valid: 'name'"),
        (
            {
                "authMode": "key",
                "tokenSecret": "ab",
                "namedKeys": '[{"name":"a","sha256":"00","limits":{}}]',
            },
            "namedKeys is not valid: named key a: sha256 must be 64",
        ),
    ],
)
def test_a_bad_keys_secret_is_refused(data: dict[str, str], message: str) -> None:
    secret = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    with pytest.raises(ServiceNotRoutable, match=message):
        auth_of(secret)


def test_keys_left_empty_never_match() -> None:
    data = {"authMode": "key", "primaryKey": "p" * 32, "secondaryKey": "", "tokenSecret": "ab"}
    secret = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    assert auth_of(secret).keys == ("p" * 32,)


def test_named_keys_reach_the_policy_as_hashes_with_their_limits() -> None:
    named = NamedKey("team-a", key_digest("the-key"), KeyLimits(rate=20.0, burst=40, quota=9, window="day"))
    _, secret = service_objects(spec_update={"named_keys": (named,)})
    assert "the-key" not in json.dumps(secret)
    policy = auth_of(secret)
    assert policy.named_keys == (named,)
    assert policy.named_by_digest[hashlib.sha256(b"the-key").digest()] == named


# -- options ----------------------------------------------------------------------------------
def test_options_come_from_the_environment_the_manifest_sets() -> None:
    container = fm.frontend_deployment(fm.ClusterInputs(services_namespace="ml"))["spec"]["template"]["spec"]
    environ = {e["name"]: e["value"] for e in container["containers"][0]["env"] if "value" in e}
    # What the kubelet resolves from the pod's own name (valueFrom).
    environ[cluster_frontend.IDENTITY_ENV] = "modelport-frontend-abc12"

    options = cluster_frontend.parse_options([], environ)

    assert options == cluster_frontend.Options(
        namespace="ml",
        host="0.0.0.0",
        port=fm.FRONTEND_PORT,
        lease_namespace=fm.DEFAULT_SYSTEM_NAMESPACE,
        identity="modelport-frontend-abc12",
    )


def test_flags_override_the_environment() -> None:
    argv = [
        "--namespace",
        "ns",
        "--port",
        "9000",
        "--host",
        "127.0.0.1",
        "--kubeconfig",
        "k",
        "--context",
        "c",
        "--lease-namespace",
        "sys",
        "--identity",
        "fe-1",
    ]
    environ = {cluster_frontend.NAMESPACE_ENV: "other", cluster_frontend.IDENTITY_ENV: "fe-0"}
    options = cluster_frontend.parse_options(argv, environ)
    assert options == cluster_frontend.Options(
        "ns", "127.0.0.1", 9000, Path("k"), "c", lease_namespace="sys", identity="fe-1"
    )


def test_without_a_lease_namespace_the_front_end_decides_alone_named_by_its_host() -> None:
    options = cluster_frontend.parse_options(["--namespace", "ns"], {})
    assert options.lease_namespace is None and options.identity == socket.gethostname()


def test_no_namespace_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cluster_frontend.parse_options([], {})
    assert exited.value.code == 2
    assert "pass --namespace or set MODELPORT_SERVICES_NAMESPACE" in capsys.readouterr().err


def test_a_missing_kubeconfig_exits_2(tmp_path: Path) -> None:
    assert cluster_frontend.main(["--namespace", "ns", "--kubeconfig", str(tmp_path / "missing")]) == 2


# -- the watch ----------------------------------------------------------------------------------
def a_pod(name: str) -> Any:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Pod

    return Pod(metadata=ObjectMeta(name=name, uid=f"uid-{name}"))


class FakeListing:
    """What ``AsyncClient.list`` returns: the objects, then the list's resourceVersion."""

    def __init__(self, objects: list[Any], version: str) -> None:
        self.objects = objects
        self.resourceVersion = version

    async def __aiter__(self) -> AsyncIterator[Any]:
        for obj in self.objects:
            yield obj


class FakeClient:
    """Lists a, b (version 1) then b alone (version 2); the first watch adds c, then fails with 410."""

    def __init__(self) -> None:
        self.lists = [FakeListing([a_pod("a"), a_pod("b")], "1"), FakeListing([a_pod("b")], "2")]
        self.watched_from: list[str] = []

    def list(self, kind: Any, *, namespace: str, labels: Any) -> FakeListing:
        return self.lists.pop(0)

    def watch(self, kind: Any, *, namespace: str, labels: Any, resource_version: str) -> AsyncIterator[Any]:
        self.watched_from.append(resource_version)
        return self._events(len(self.watched_from))

    async def _events(self, attempt: int) -> AsyncIterator[Any]:
        from lightkube import ApiError
        from lightkube.models.meta_v1 import Status

        if attempt == 1:
            yield "ADDED", a_pod("c")
            raise ApiError(status=Status(code=410, message="too old resource version"))
        await asyncio.Event().wait()  # the second watch stays open with nothing to say


def test_after_410_gone_the_watch_lists_again_and_forgets_what_was_deleted_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lightkube.resources.core_v1 import Pod

    monkeypatch.setattr(cluster_frontend, "BACKOFF_FIRST_S", 0.0)
    client = FakeClient()
    seen: list[set[str]] = []

    async def scenario() -> None:
        watched = cluster_frontend.Watched(client, Pod, "ns", lambda: seen.append(set(watched.objects)))
        task = asyncio.create_task(watched.run())
        while len(client.watched_from) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    assert client.watched_from == ["1", "2"]  # each watch starts at its own list's version
    assert seen == [{"a", "b"}, {"a", "b", "c"}, {"b"}]  # the second list replaced the cache
