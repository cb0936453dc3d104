"""`make quickstart`: train the iris model, register it, deploy it locally and score it with the key.

Everything happens in ./quickstart-workspace (delete it to start over). The service keeps
running afterwards so that the printed curl line works; `modelport service delete -n iris-svc`
(from that folder) removes it and `modelport local stop` stops the local agent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "quickstart-workspace"


def step(message: str) -> None:
    """Print a numbered-looking step line."""
    print(f"==> {message}", flush=True)


def main() -> None:
    """Run the whole journey, failing loudly at the first problem."""
    from modelport import Model, Workspace
    from modelport.config import load_deployment_config, load_inference_config

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
    deployment = load_deployment_config("deploymentconfig.json")
    effective = deployment.effective()
    print(f"    entry script {inference.entry_script}, environment {inference.environment.name}")
    print(
        f"    replicas {effective.autoscale_min_replicas}..{effective.autoscale_max_replicas}, "
        f"cpu {effective.cpu_cores}, memory {effective.memory_gb} GB, key auth {effective.auth_enabled}"
    )

    step("deploying iris-svc to the local target (environment built once, then cached)")
    service = Model.deploy(ws, "iris-svc", [model], inference, deployment, overwrite=True)
    service.wait_for_deployment(show_output=True)

    body = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    key = service.get_keys()[0]
    step("scoring two flowers through the front end, with the service key")
    response = httpx.post(
        service.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    response.raise_for_status()
    print(f"    {response.json()}  (0 = setosa, 2 = virginica)")
    print("    the same with curl:")
    print(
        f"    curl -s -X POST {service.scoring_uri} -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'"
    )
    print(f"    logs: modelport service logs -n iris-svc   (in {WORK})")
    print("    clean up: modelport service delete -n iris-svc && modelport local stop")
    step("done")


if __name__ == "__main__":
    main()
