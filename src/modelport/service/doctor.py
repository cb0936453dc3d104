"""``modelport doctor kubernetes``: prove on a real cluster what the testbed cannot.

Deploys a probe service (an echo entry script and a one-file model) to the target, scores it
through the front end with its key, checks that a wrong key is refused and that logs are
readable, then removes the probe service and model. Each step reports what it saw and how long
it took; the first failure stops the run (the clean-up still runs) and says what to fix.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from modelport.compute.kubernetes.capacity import DEV_TEST, check_purpose
from modelport.compute.kubernetes.connection import cluster_errors, connect
from modelport.compute.kubernetes.frontend_manifests import FRONTEND_NAME
from modelport.compute.kubernetes.target import KubernetesTarget, load_target
from modelport.compute.kubernetes.target_status import frontend_url
from modelport.config.deployment import KubernetesDeploymentConfig
from modelport.config.inference import InferenceConfig
from modelport.errors import ModelportError
from modelport.registry.model import Model
from modelport.service.deploy import deploy

if TYPE_CHECKING:
    from modelport.workspace import Workspace

PROBE_SCRIPT = """\
def init():
    pass


def run(raw_data):
    return {"echo": raw_data}
"""
SCORING_REQUESTS = 20
HTTP_TIMEOUT_S = 30.0


@dataclass
class Step:
    """One check: its name, whether it passed, what it saw, and how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``-o json``."""
        return {"step": self.name, "ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 2)}


class DoctorFailed(Exception):
    """A step failed; the message says what was seen and the fix."""


@dataclass
class _Probe:
    workspace: Workspace
    target_name: str
    deploy_timeout_s: float
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    model: Any = None
    service: Any = None
    base_url: str | None = None
    target: KubernetesTarget | None = None
    client: Any = None

    @property
    def service_name(self) -> str:
        return f"doctor-{self.suffix}"

    def cluster(self) -> tuple[KubernetesTarget, Any]:
        """The target and a client for it, made once for all the checks."""
        if self.client is None:
            self.target = load_target(self.workspace, self.target_name)
            self.client = connect(self.target)
        assert self.target is not None
        return self.target, self.client


def _timed(name: str, check: Callable[[], str]) -> Step:
    started = time.monotonic()
    try:
        detail = check()
    except (DoctorFailed, ModelportError, httpx.HTTPError) as exc:
        return Step(name, False, str(exc), time.monotonic() - started)
    return Step(name, True, detail, time.monotonic() - started)


def run_checks(workspace: Workspace, target_name: str, deploy_timeout_s: float = 600.0) -> Iterator[Step]:
    """Run the checks in order, yielding each result; stops after the first failure, then cleans up."""
    probe = _Probe(workspace, target_name, deploy_timeout_s)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("cluster reachable, nodes ready", lambda: _cluster(probe)),
        ("front end ready and reachable", lambda: _front_end(probe)),
        ("probe service deployed and Healthy", lambda: _deploy(probe)),
        ("scoring through the front end with the key", lambda: _score(probe)),
        ("a wrong key is refused with 401", lambda: _wrong_key(probe)),
        ("replica logs readable", lambda: _logs(probe)),
    ]
    try:
        for name, check in checks:
            step = _timed(name, check)
            yield step
            if not step.ok:
                break
    finally:
        yield _timed("probe service and model removed", lambda: _clean_up(probe))


def _cluster(probe: _Probe) -> str:
    from lightkube.resources.core_v1 import Node

    target, client = probe.cluster()
    with cluster_errors(target, "listing nodes"):
        capacity = check_purpose([n.to_dict() for n in client.list(Node)], DEV_TEST)
    if capacity.nodes == 0:
        raise DoctorFailed("no Ready, schedulable node. Fix: add nodes or uncordon them.")
    return f"{capacity.nodes} usable node(s), {capacity.cpus:g} allocatable vCPU(s)"


def _front_end(probe: _Probe) -> str:
    from lightkube.resources.apps_v1 import Deployment

    target, client = probe.cluster()
    with cluster_errors(target, "reading the front end"):
        deployment = client.get(Deployment, FRONTEND_NAME, namespace=target.system_namespace)
        ready = (deployment.status.readyReplicas or 0) if deployment.status else 0
        base = frontend_url(client, target)
    if not ready:
        raise DoctorFailed(
            f"the front end in namespace {target.system_namespace} has no ready replica. Fix: look at its "
            f"pods (kubectl -n {target.system_namespace} describe pods) — usually the image cannot be pulled."
        )
    if base is None:
        raise DoctorFailed(
            "the front end's Service has no address yet (a LoadBalancer still pending?). Fix: wait, or "
            "attach with --scoring-url (an ingress or a port-forward address)."
        )
    try:
        answer = httpx.get(f"{base}/", timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise DoctorFailed(
            f"cannot reach the front end at {base} from here ({exc!r}). Fix: make the address reachable "
            "(firewall, load balancer), or attach with --scoring-url set to an address that is."
        ) from exc
    if answer.status_code != 200:
        raise DoctorFailed(f"GET {base}/ answered {answer.status_code}: {answer.text[:200]}")
    probe.base_url = base
    return f"{ready} ready replica(s) at {base}"


def _deploy(probe: _Probe) -> str:
    with tempfile.TemporaryDirectory(prefix="modelport-doctor-") as folder:
        source = Path(folder) / "probe"
        source.mkdir()
        (source / "score.py").write_text(PROBE_SCRIPT)
        weights = Path(folder) / "probe.txt"
        weights.write_text("modelport doctor probe model\n")
        probe.model = Model.register(probe.workspace, str(weights), f"doctor-probe-{probe.suffix}")
        config = KubernetesDeploymentConfig(
            cpu_cores=0.1,
            memory_gb=0.25,
            autoscale_enabled=False,
            num_replicas=1,
            compute_target_name=probe.target_name,
        )
        inference = InferenceConfig(entry_script="score.py", source_directory=str(source))
        started = time.monotonic()
        probe.service = deploy(probe.workspace, probe.service_name, [probe.model], inference, config)
    probe.service.wait_for_deployment(timeout_sec=probe.deploy_timeout_s)
    return f"{probe.service_name} Healthy {time.monotonic() - started:.1f} s after deploy"


def _score(probe: _Probe) -> str:
    latencies = []
    for index in range(SCORING_REQUESTS):
        started = time.monotonic()
        answer = probe.service.run({"probe": index})
        latencies.append((time.monotonic() - started) * 1000)
        if answer != {"echo": f'{{"probe": {index}}}'}:
            raise DoctorFailed(f"request {index} answered {answer!r}, expected the echo of the input")
    p50, worst = statistics.median(latencies), max(latencies)
    return f"{SCORING_REQUESTS} requests to {probe.service.scoring_uri}: p50 {p50:.1f} ms, max {worst:.1f} ms"


def _wrong_key(probe: _Probe) -> str:
    answer = httpx.post(
        probe.service.scoring_uri,
        content=b"{}",
        headers={"Authorization": "Bearer not-the-key", "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT_S,
    )
    if answer.status_code != 401:
        raise DoctorFailed(f"a wrong key got HTTP {answer.status_code}, expected 401: auth is not enforced")
    return "401"


def _logs(probe: _Probe) -> str:
    text = probe.service.get_logs(num_lines=50)
    if "no log:" in text or not text.strip():
        raise DoctorFailed(f"the replica's log could not be read: {text.strip()[:300]}")
    return f"{len(text.splitlines())} line(s)"


def _clean_up(probe: _Probe) -> str:
    removed = []
    if probe.service is not None:
        probe.service.delete()
        removed.append(f"service {probe.service_name}")
    if probe.model is not None:
        probe.model.delete()
        removed.append(f"model {probe.model.id}")
    return ", ".join(removed) if removed else "nothing was created"
