"""init() waits until the test creates AML_APP_ROOT/release-init (readiness tests)."""

import os
import time
from pathlib import Path

ROOT = Path(os.environ["AML_APP_ROOT"])


def init():
    (ROOT / f"init-started-{os.getpid()}").write_text("")
    end = time.monotonic() + 60
    while not (ROOT / "release-init").exists() and time.monotonic() < end:
        time.sleep(0.01)


def run(data):
    return {"got": data}
