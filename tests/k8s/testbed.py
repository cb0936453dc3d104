"""The Kubernetes testbed for the test suite: etcd, kube-apiserver (+ controller-manager, scheduler)
1.20.2 on loopback.

The implementation is ``k8s/testbed/controlplane.py``, shared with ``scripts/k8s-testbed`` and
independent of the test suite. It is loaded by path, as module ``modelport_k8s_testbed``: the
folder ``k8s/`` cannot be a package, because pytest already names ``tests/k8s`` ``k8s``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MODULE_NAME = "modelport_k8s_testbed"
MODULE_PATH = Path(__file__).resolve().parents[2] / "k8s" / "testbed" / "controlplane.py"


def _load() -> ModuleType:
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None:  # the script or an earlier import loaded it: one set of classes
        return loaded
    spec = importlib.util.spec_from_file_location(MODULE_NAME, MODULE_PATH)
    assert spec is not None and spec.loader is not None, MODULE_PATH
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # before running it: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


controlplane = _load()
# The real node's modules sit beside controlplane.py and find it under MODULE_NAME (node.py).
sys.path.insert(0, str(MODULE_PATH.parent))
netns: ModuleType = importlib.import_module("netns")
image: ModuleType = importlib.import_module("image")
node: ModuleType = importlib.import_module("node")
ADMIN_TOKEN: str = controlplane.ADMIN_TOKEN
BINARIES: tuple[str, ...] = controlplane.BINARIES
STATE_FILE: str = controlplane.STATE_FILE
ControlPlane = controlplane.ControlPlane
TestbedError = controlplane.TestbedError
bin_dir_from_env = controlplane.bin_dir_from_env
missing_binaries = controlplane.missing_binaries
