"""Real-node benchmark (issue 12, point 5): the Kubernetes target on the testbed's real node, beside
the local target on the same model in the same run.

(a) attach time (the front end's Deployment Ready);
(b) deploy → Healthy with the runtime image already on the node (a first, untimed deploy pulls
    it); goal ≤ 10 s; beside the local target's deploy → Healthy (workspace Python);
(c) load step → second replica serving (autoscaling, refresh 1 s): seconds from the first request
    of the step to the first answer from a second pod; goal ≤ 5 s;
(d) p50 and throughput of a trivial ``run()`` through the in-cluster front end (NodePort) versus
    straight to the pod IP, at 1 and 8 connections; goal: the front end's hop ≤ 1 ms at p50;
    beside the same through the local target's front end versus its replica;
(e) (issue 13) deploy → Healthy of a scikit-learn environment from the node cache (one core),
    cold (the first pod on the node builds it) and warm (a second service reuses it), with where
    the pod's seconds went; goals warm ≤ 10 s, cold ≤ 60 s; beside the local target's cold and warm figures
    for the same environment. The pods install from a package index served inside the testbed's
    namespace (``tests/compute/kubernetes/wheel_index.py``).

The load is a closed loop of keep-alive httpx clients in threads (``wrk`` is not on these
machines), the same client on every side, so the differences are what the figures are for.

Runs as root (the real node; ``scripts/k8s-testbed build --real-node`` first, as for ``make
test-k8s-node``, with ``MODELPORT_K8S_BIN`` and ``MODELPORT_K8S_NODE_BIN`` set). It starts its own
real-node testbed and enters its network namespace: the Kubernetes side's traffic goes only to
addresses inside it, the local target's to loopback. It uses the test suite's testbed helpers
(``tests/compute/kubernetes/testbed.py``, ``tests/servers.py``). Prints figures; asserts nothing.
Usage: ``python bench/k8s_node.py [--duration 5] [--out F]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's testbed helpers

TRIVIAL_SCORE = textwrap.dedent(
    """
    import socket

    def init():
        pass

    def run(raw_data):
        return {"replica": socket.gethostname()}
    """
)
BUSY_SCORE = textwrap.dedent(
    """
    import socket
    import time

    def init():
        pass

    def run(raw_data):
        time.sleep(0.2)
        return {"replica": socket.gethostname()}
    """
)
BODY = {"data": [[5.1, 3.5, 1.4, 0.2]]}
CONNECTIONS = (1, 8)


def closed_loop(url: str, headers: dict[str, str], connections: int, duration_s: float) -> dict[str, float]:
    """``connections`` clients posting back to back for ``duration_s``: rps, p50, p99 (ms), errors."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    end = time.perf_counter() + duration_s

    def loop(index: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.perf_counter() < end:
                start = time.perf_counter()
                try:
                    ok = client.post(url, json=BODY).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[index].append(time.perf_counter() - start)
                errors[index] += not ok

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(x for part in latencies for x in part)
    return {
        "requests": len(merged),
        "errors": sum(errors),
        "rps": len(merged) / duration_s,
        "p50_ms": 1000 * statistics.median(merged),
        "p99_ms": 1000 * merged[int(0.99 * (len(merged) - 1))],
    }


def timed(action: Callable[[], Any]) -> float:
    """Seconds ``action`` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def source(root: Path, name: str, script: str) -> str:
    """A source folder holding ``score.py``."""
    folder = root / name
    folder.mkdir()
    (folder / "score.py").write_text(script)
    return str(folder)


def side_by_side(frontend: str, direct: str, key: str, duration: int) -> list[dict[str, Any]]:
    """(d) at each connection count, the direct side first, then through the front end."""
    rows = []
    for connections in CONNECTIONS:
        straight = closed_loop(direct, {}, connections, duration)
        through = closed_loop(frontend, {"Authorization": f"Bearer {key}"}, connections, duration)
        rows.append({"connections": connections, "direct": straight, "frontend": through})
    return rows


def scale_up(service: Any, key: str, deadline_s: float = 120) -> float:
    """(c) seconds from a load step (8 connections) to the first answer from a second replica."""
    seen: set[str] = set()
    found = threading.Event()
    stop = threading.Event()
    start = time.perf_counter()
    elapsed: list[float] = []

    def loop() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            while not stop.is_set() and time.perf_counter() - start < deadline_s:
                answer = client.post(service.scoring_uri, json=BODY)
                if answer.status_code == 200:
                    seen.add(answer.json()["replica"])
                    if len(seen) >= 2 and not found.is_set():
                        elapsed.append(time.perf_counter() - start)
                        found.set()

    threads = [threading.Thread(target=loop) for _ in range(8)]
    for thread in threads:
        thread.start()
    found.wait(deadline_s)
    stop.set()
    for thread in threads:
        thread.join()
    return elapsed[0] if elapsed else float("inf")


ENV_SCORE = textwrap.dedent(
    """
    def init():
        import sklearn.linear_model  # the environment's package, loaded as a model's score.py would

    def run(raw_data):
        return raw_data
    """
)


def sklearn_environment() -> Any:
    """The environment of (e): scikit-learn from the package index."""
    from modelport.registry.environment import Environment

    env = Environment("bench-sklearn")
    env.python.conda_dependencies.add_pip_package("scikit-learn")
    return env


def pod_timeline(kube: Any, namespace: str, service: str) -> dict[str, float]:
    """Seconds from the pod's creation to each init container's end, the scorer's start and Ready
    (the API's timestamps have whole seconds)."""
    from lightkube.resources.core_v1 import Pod

    (pod,) = kube.list(Pod, namespace=namespace, labels={"modelport.io/service": service})
    created = pod.metadata.creationTimestamp
    points = {
        f"{status.name} done": status.state.terminated.finishedAt
        for status in pod.status.initContainerStatuses or []
        if status.state.terminated is not None
    }
    scorer = pod.status.containerStatuses[0].state.running
    if scorer is not None:
        points["scorer started"] = scorer.startedAt
    for condition in pod.status.conditions or []:
        if condition.type == "Ready":
            points["Ready"] = condition.lastTransitionTime
    return {name: (moment - created).total_seconds() for name, moment in points.items()}


def kubernetes_side(root: Path, duration: int, pod_cpu: float) -> dict[str, Any]:
    """(a)–(d) on a real-node testbed started here; the process enters its network namespace."""
    from lightkube import Client, KubeConfig
    from lightkube.resources.core_v1 import Pod

    from modelport import Model
    from modelport.compute.kubernetes.cluster import attach
    from modelport.compute.kubernetes.target import KubernetesTarget
    from modelport.config.deployment import KubernetesDeploymentConfig
    from modelport.config.inference import InferenceConfig
    from modelport.service.webservice import Webservice
    from modelport.workspace import Workspace
    from tests.compute.kubernetes.testbed import netns
    from tests.compute.kubernetes.wheel_index import served, wheelhouse
    from tests.servers import s3_server

    folder = root / "node"
    testbed = [sys.executable, str(ROOT / "scripts" / "k8s-testbed")]
    subprocess.run([*testbed, "start", "--real-node", "--dir", str(folder)], check=True)
    state = json.loads((folder / "node.json").read_text())
    figures: dict[str, Any] = {}
    try:
        with (
            netns.entered(state["netns"]) as outside,
            s3_server(host="0.0.0.0") as s3,
            served(wheelhouse(["scikit-learn"], outside), state["nodeIP"]) as index,
        ):
            suffix = uuid.uuid4().hex[:8]
            ws = Workspace.create(
                "bench-k8s",
                path=root / "ws-k8s",
                artifact_url=f"s3://bench-{suffix}/artifacts",
                storage_options=s3.storage_options(),
            )
            target = KubernetesTarget(
                kubeconfig=state["kubeconfig"],
                namespace=f"svc-{suffix}",
                system_namespace=f"sys-{suffix}",
                cluster_purpose="DevTest",
                image=f"{state['registry']}/modelport/runtime:0.1.0",
                frontend_service_type="NodePort",
                store_endpoint_url=f"http://{state['nodeIP']}:{s3.endpoint_url.rsplit(':', 1)[1]}",
                env_cache=str(folder / "envs"),
                package_index_url=index,
            )
            figures["attach_s"] = timed(lambda: attach(ws, "prod", target))
            fixed = {"cpu_cores": pod_cpu, "memory_gb": 0.25, "compute_target_name": "prod"}
            trivial = InferenceConfig("score.py", source_directory=source(root, "k8s-src", TRIVIAL_SCORE))

            def deploy(name: str, inference: InferenceConfig, **knobs: Any) -> Any:
                config = KubernetesDeploymentConfig(**{**fixed, **knobs})
                service = Model.deploy(ws, name, [], inference, config)
                service.wait_for_deployment(timeout_sec=600)
                return service

            deploy("warmup", trivial, autoscale_enabled=False, num_replicas=1).delete()  # pulls the image
            holder: list[Any] = []
            figures["deploy_s"] = timed(
                lambda: holder.append(
                    deploy(
                        "bench",
                        trivial,
                        autoscale_enabled=False,
                        num_replicas=1,
                        replica_max_concurrent_requests=8,
                    )
                )
            )
            service = holder[0]
            key = service.get_keys()[0]
            kube = Client(config=KubeConfig.from_file(state["kubeconfig"]))
            (pod,) = kube.list(Pod, namespace=target.namespace, labels={"modelport.io/service": "bench"})
            direct = f"http://{pod.status.podIP}:5001/score"
            figures["overhead"] = side_by_side(service.scoring_uri, direct, key, duration)
            service.delete()
            busy = InferenceConfig("score.py", source_directory=source(root, "k8s-busy", BUSY_SCORE))
            elastic = deploy(
                "elastic",
                busy,
                autoscale_enabled=True,
                autoscale_min_replicas=1,
                autoscale_max_replicas=4,
                max_request_wait_time=60_000,
            )
            figures["scale_up_s"] = scale_up(elastic, elastic.get_keys()[0])
            elastic.delete()
            with_env = InferenceConfig(
                "score.py",
                source_directory=source(root, "k8s-env", ENV_SCORE),
                environment=sklearn_environment(),
            )
            # One core: the environment's packages load at the speed a scikit-learn model is given
            # (at Azure ML's default 0.1 core, importing them alone takes most of 20 s).
            for run in ("cold", "warm"):  # one after the other: the node has room for one such pod
                figures[f"env_{run}_s"] = timed(
                    lambda run=run: deploy(
                        f"env-{run}", with_env, autoscale_enabled=False, num_replicas=1, cpu_cores=1.0
                    )
                )
                figures[f"env_{run}_pod"] = pod_timeline(kube, target.namespace, f"env-{run}")
                Webservice(ws, f"env-{run}").delete()
            kube.close()
    finally:
        subprocess.run([*testbed, "stop", "--dir", str(folder)], check=False)
    return figures


def local_side(root: Path, duration: int) -> dict[str, Any]:
    """(b) and (d) on the local target, same scoring script."""
    from modelport import Model
    from modelport.compute.local.driver import LocalDriver
    from modelport.config import InferenceConfig, local_deploy_configuration
    from modelport.workspace import Workspace

    ws = Workspace.create("bench-local", path=root / "ws-local")
    inference = InferenceConfig("score.py", source_directory=source(root, "local-src", TRIVIAL_SCORE))
    config = local_deploy_configuration(auth_enabled=True, num_replicas=1, replica_max_concurrent_requests=8)
    try:
        holder: list[Any] = []

        def deploy() -> None:
            service = Model.deploy(ws, "bench", [], inference, config)
            service.wait_for_deployment(timeout_sec=120)
            holder.append(service)

        figures: dict[str, Any] = {"deploy_s": timed(deploy)}
        service = holder[0]
        replica = next(r for r in service.observed["replicas"] if r["state"] == "ready")
        direct = f"http://127.0.0.1:{replica['port']}/score"
        figures["overhead"] = side_by_side(service.scoring_uri, direct, service.get_keys()[0], duration)
        service.delete()
        with_env = InferenceConfig(
            "score.py",
            source_directory=source(root, "local-env", ENV_SCORE),
            environment=sklearn_environment(),
        )
        for run in ("cold", "warm"):  # a fresh MODELPORT_HOME: the first deploy builds the environment

            def deploy_env(run: str = run) -> None:
                Model.deploy(ws, f"env-{run}", [], with_env, config).wait_for_deployment(timeout_sec=600)

            figures[f"env_{run}_s"] = timed(deploy_env)
    finally:
        LocalDriver().stop_agent(ws)
    return figures


def main() -> None:
    """Both sides, then the figures beside their goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per load run in (d)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--pod-cpu",
        type=float,
        default=0.1,
        help="cpu_cores of the pods of (b)-(d), also their CPU limit (default 0.1, Azure ML's default)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="modelport-k8s-node-bench-"))
    os.environ["MODELPORT_HOME"] = str(root / "home")
    os.environ["MODELPORT_QUIET"] = "1"
    figures = {
        "local": local_side(root, args.duration),
        "kubernetes": kubernetes_side(root, args.duration, args.pod_cpu),
    }
    k8s, local = figures["kubernetes"], figures["local"]
    print(f"(a) attach: {k8s['attach_s']:.1f} s; pods of (b)-(d): {args.pod_cpu:g} core each")
    print(
        f"(b) deploy -> Healthy: real node {k8s['deploy_s']:.1f} s (goal <= 10 s), "
        f"local {local['deploy_s']:.1f} s"
    )
    print(f"(c) load step -> second replica serving: {k8s['scale_up_s']:.1f} s (goal <= 5 s)")
    print(
        "(d) straight to the replica -> through the front end: rps, p50 ms, +p50 ms "
        "(goal on the node <= 1 ms)"
    )
    for side in ("kubernetes", "local"):
        for row in figures[side]["overhead"]:
            d, f = row["direct"], row["frontend"]
            print(
                f"    {side:<10} {row['connections']} conn: {d['rps']:.0f} rps {d['p50_ms']:.2f} ms -> "
                f"{f['rps']:.0f} rps {f['p50_ms']:.2f} ms ({f['p50_ms'] - d['p50_ms']:+.2f} ms; "
                f"errors {d['errors']}/{f['errors']})"
            )
    print(
        "(e) scikit-learn environment (1 core), deploy -> Healthy: node cache cold "
        f"{k8s['env_cold_s']:.1f} s (goal <= 60 s), warm {k8s['env_warm_s']:.1f} s (goal <= 10 s); "
        f"local cold {local['env_cold_s']:.1f} s, warm {local['env_warm_s']:.1f} s"
    )
    for run in ("cold", "warm"):
        steps = ", ".join(f"{name} {at:.0f} s" for name, at in k8s[f"env_{run}_pod"].items())
        print(f"    the {run} pod, from its creation: {steps}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
