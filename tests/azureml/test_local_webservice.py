"""A port of Azure ML's local-deployment notebook: ``LocalWebservice`` on its own port, no auth,
``reload()`` picking up edited code, lower-case states."""

from __future__ import annotations

import json
import socket
import textwrap
import time

import httpx
import pytest

from modelport.azureml.core import Model
from modelport.azureml.core.model import InferenceConfig
from modelport.azureml.core.webservice import LocalWebservice, Webservice
from modelport.azureml.exceptions import UserErrorException, WebserviceException
from modelport.compute.local.ports import free_port

# The local-target suite: make test runs it again with the portable (non-Linux) paths forced.
pytestmark = pytest.mark.local_target

SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})

SCORE = textwrap.dedent(
    """
    import json
    import os

    import joblib


    def init():
        global model, greeting
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_iris.pkl"))
        with open("local_src/greeting.txt") as handle:  # relative to the app root, as in Azure ML
            greeting = handle.read().strip()


    def run(raw_data):
        return {"greeting": greeting, "VERSION": model.predict(json.loads(raw_data)["data"]).tolist()}
    """
)


def _closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_local_webservice_on_its_port_reloads_edited_code(ws, project, capsys) -> None:
    model = Model.register(ws, model_path="outputs/sklearn_iris.pkl", model_name="iris-local")
    source = project / "local_src"
    source.mkdir()
    (source / "score.py").write_text(SCORE)
    (source / "greeting.txt").write_text("hello")
    port = free_port()
    inference_config = InferenceConfig(entry_script="score.py", source_directory="local_src")
    service = Model.deploy(
        ws, "iris-local", [model], inference_config, LocalWebservice.deploy_configuration(port)
    )
    assert isinstance(service, LocalWebservice) and service.port == port
    service.wait_for_deployment(show_output=True)
    assert f"Local webservice is running at http://localhost:{port}" in capsys.readouterr().out
    assert service.state == "running"
    assert service.scoring_uri == f"http://localhost:{port}/score"

    plain = httpx.post(service.scoring_uri, content=SAMPLE, headers={"Content-Type": "application/json"})
    assert plain.status_code == 200 and plain.json() == {"greeting": "hello", "VERSION": [0]}
    assert service.run(SAMPLE)["greeting"] == "hello"
    root = httpx.get(f"http://localhost:{port}/")
    assert root.status_code == 200 and root.text == "Healthy"
    assert httpx.get(service.swagger_uri).status_code == 200
    assert httpx.get(f"http://localhost:{port}/other").status_code == 404
    with pytest.raises(NotImplementedError):
        service.get_keys()

    again = Webservice(ws, "iris-local")
    assert isinstance(again, LocalWebservice) and again.port == port
    assert [s.name for s in LocalWebservice.list(ws)] == ["iris-local"]
    assert again.serialize()["port"] == port and again.serialize()["state"] == "running"

    with pytest.raises(UserErrorException, match=f"port {port} is already used by service iris-local"):
        Model.deploy(
            ws, "iris-local-2", [model], inference_config, LocalWebservice.deploy_configuration(port)
        )

    generation = service.generation
    (source / "greeting.txt").write_text("bonjour")
    (source / "score.py").write_text(SCORE.replace('"VERSION"', '"classes"'))
    service.reload(wait=True)
    assert service.generation == generation + 1 and [m.id for m in service.models] == ["iris-local:1"]
    assert service.run(SAMPLE) == {"greeting": "bonjour", "classes": [0]}

    service.delete()
    deadline = time.monotonic() + 10
    while not _closed(port):  # the agent closes the listener on its next pass
        assert time.monotonic() < deadline, f"port {port} still open after the service was deleted"
        time.sleep(0.05)


def test_reload_then_run_answers_with_the_edited_script_at_once(ws, project) -> None:
    # Azure ML's reload recreated the container before returning: no polling between the calls.
    source = project / "reload_src"
    source.mkdir()
    script = "def init():\n    pass\n\n\ndef run(raw_data):\n    return {{'version': {}}}\n"
    (source / "score.py").write_text(script.format(1))
    config = InferenceConfig(entry_script="score.py", source_directory="reload_src")
    service = Model.deploy(ws, "reload-now", [], config, LocalWebservice.deploy_configuration())
    service.wait_for_deployment()
    assert service.run(SAMPLE) == {"version": 1}

    (source / "score.py").write_text(script.format(2))
    service.reload()
    assert service.run(SAMPLE) == {"version": 2}

    # update() returns at once; a run() while the new generation rolls out waits for it.
    (source / "score.py").write_text(script.format(3))
    service.update(inference_config=config)
    assert service.run(SAMPLE) == {"version": 3}
    service.delete()


def test_local_deploy_configuration_validates_the_port() -> None:
    with pytest.raises(WebserviceException, match=r"port must be an integer in range \[1, 65535\]"):
        LocalWebservice.deploy_configuration(port=70000)
