"""Entry script of the front-end tests: a JSON command in the body picks a behaviour.

``{"action": "block", "tag": t}`` writes ``started-<t>`` and waits for ``release-<t>`` in
``$FRONTEND_TEST_DIR`` (the test's way to hold a request in flight without sleeping);
``sleep`` holds the worker for a given time; ``raise`` makes run() fail. Every answer names the
replica (``$REPLICA_ID``) so the tests see where the front end sent each request.
"""

import json
import os
import time
from pathlib import Path

REPLICA = os.environ.get("REPLICA_ID", "?")
ROOT = Path(os.environ.get("FRONTEND_TEST_DIR", "."))


def init():
    pass


def _block(tag, max_s):
    # Written then renamed, so that the test never reads a half-written file.
    (ROOT / f"starting-{tag}").write_text(REPLICA)
    (ROOT / f"starting-{tag}").rename(ROOT / f"started-{tag}")
    release = ROOT / f"release-{tag}"
    end = time.monotonic() + max_s
    while not release.exists() and time.monotonic() < end:
        time.sleep(0.005)
    return {"replica": REPLICA, "released": release.exists()}


def run(data, request_headers):
    command = json.loads(data) if data else {}
    action = command.get("action")
    if action == "block":
        return _block(command["tag"], command.get("max_s", 30))
    if action == "sleep":
        time.sleep(command["seconds"])
        return {"replica": REPLICA, "slept": command["seconds"]}
    if action == "raise":
        raise RuntimeError("run() exploded on purpose")
    return {"replica": REPLICA, "got": command, "headers": request_headers}
