"""`make quickstart`: train the iris model, register it, validate the configs, serve it and score it.

Everything happens in ./quickstart-workspace (delete it to start over). Deployment to the local
target (`Model.deploy`) arrives with the local compute target; until then the model is served
by the same replica runtime every deployment runs (`modelport serve`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "quickstart-workspace"
READY_DEADLINE_S = 120.0


def step(message: str) -> None:
    """Print a numbered-looking step line."""
    print(f"==> {message}", flush=True)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    """Run the whole journey, failing loudly at the first problem."""
    from modelport.config import load_deployment_config, load_inference_config
    from modelport.registry.model import Model
    from modelport.workspace import Workspace

    sys.path.insert(0, str(HERE))
    from train import train

    WORK.mkdir(exist_ok=True)
    for name in ("src", "inferenceconfig.json", "deploymentconfig.json"):
        source = HERE / name
        target = WORK / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy(source, target)
    os.chdir(WORK)

    step("training the iris model (scikit-learn's bundled dataset)")
    print(f"    training accuracy {train('model.pkl'):.3f}")

    step("creating (or opening) the workspace ./quickstart-workspace/.modelport")
    ws = Workspace.create("quickstart", path=WORK, exist_ok=True)

    step("registering the model")
    model = Model.register(
        ws, "model.pkl", "iris", tags={"demo": "quickstart"}, model_framework=Model.Framework.SCIKITLEARN
    )
    print(f"    registered {model.id} ({model.size_bytes} bytes)")

    step("validating inferenceconfig.json and deploymentconfig.json")
    inference = load_inference_config("inferenceconfig.json")
    effective = load_deployment_config("deploymentconfig.json").effective()
    print(f"    entry script {inference.entry_script}, environment {inference.environment.name}")
    print(
        f"    replicas {effective.autoscale_min_replicas}..{effective.autoscale_max_replicas}, "
        f"cpu {effective.cpu_cores}, memory {effective.memory_gb} GB, key auth {effective.auth_enabled}"
    )

    step("serving the model with the replica runtime (modelport serve)")
    model_dir = WORK / "azureml-models" / model.name / str(model.version)
    model.download(model_dir, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelport",
            "serve",
            "--entry_script",
            "src/score.py",
            "--model_dir",
            str(model_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(WORK / "serve.log", "w"),  # noqa: SIM115 - closed with the process
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited; see {WORK / 'serve.log'}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server was not ready within {READY_DEADLINE_S}s; see serve.log")
            time.sleep(0.1)
        body = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
        step("scoring two flowers")
        response = httpx.post(f"{base}/score", json=body, timeout=30)
        response.raise_for_status()
        print(f"    {response.json()}  (0 = setosa, 2 = virginica)")
        print("    the same with curl:")
        print(f"    curl -s -X POST {base}/score -H 'Content-Type: application/json' -d '{json.dumps(body)}'")
    finally:
        server.terminate()
        server.wait(timeout=30)
    step("done")


if __name__ == "__main__":
    main()
