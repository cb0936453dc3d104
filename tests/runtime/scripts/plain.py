"""Undecorated entry script: run() gets the body as a str; a JSON command in it picks a behaviour."""

import contextlib
import json
import os
import time
from pathlib import Path

ROOT = Path(os.environ["AML_APP_ROOT"])


def init():
    (ROOT / f"init-{os.getpid()}").write_text("done")


def _block(tag, max_s=60):
    # Tell the test that run() started, then wait until the test releases it.
    (ROOT / f"started-{tag}").write_text(str(os.getpid()))
    release = ROOT / f"release-{tag}"
    end = time.monotonic() + max_s
    while not release.exists() and time.monotonic() < end:
        time.sleep(0.01)
    return {"released": release.exists(), "pid": os.getpid()}


def _stubborn(seconds):
    # Swallows everything, the scoring-timeout exception included.
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(BaseException):
            time.sleep(0.05)
    return {"survived": True}


def _value(name):
    if name == "none":
        return None
    if name == "string":
        return "plain string"
    if name == "pandas":
        import pandas

        return pandas.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    import numpy

    return numpy.arange(3)


def run(data, request_headers):
    try:
        command = json.loads(data)
    except ValueError:
        command = None
    action = command.get("action") if isinstance(command, dict) else None
    if action == "return":
        return _value(command["value"])
    if action == "raise":
        raise RuntimeError("run() exploded on purpose")
    if action == "crash":
        os._exit(7)
    if action == "block":
        return _block(command["tag"], command.get("max_s", 60))
    if action == "stubborn":
        return _stubborn(command["seconds"])
    if action == "response":
        from azureml.contrib.services.aml_response import AMLResponse

        return AMLResponse(command["body"], command["status"], command.get("headers", {}))
    return {"got": data, "pid": os.getpid(), "headers": request_headers}
