"""The init container of every service pod: fetch models and code into the app root, verified.

``python -m modelport.compute.kubernetes.fetch PLAN`` reads the plan that
:func:`modelport.compute.kubernetes.fetch_plan.fetch_plan` wrote into a ConfigMap, fetches each
blob from the artifact store into the pod's ``emptyDir`` (the ``AZUREML_MODEL_DIR`` layout),
checks every file's SHA-256 against its digest, and copies inline source files out of their
ConfigMap volume. Its output is what ``get_logs(init=True)`` shows, so each step is one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from modelport.errors import ArtifactStoreError, ModelportError
from modelport.workspace.artifacts import CHUNK_SIZE, ArtifactStore
from modelport.workspace.filesets import safe_relative


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _target(root: Path, relative: str) -> Path:
    # The plan comes from the workspace, but a path must still never leave the app root.
    return root / safe_relative(relative, "path", "appRoot")


def run_plan(plan: dict[str, Any], app_root: Path | None = None, out: Any = None) -> int:
    """Carry out ``plan``; returns the number of files written. Raises on the first failure."""
    out = out or sys.stdout
    root = Path(app_root or plan["appRoot"])
    root.mkdir(parents=True, exist_ok=True)
    files = plan.get("files", [])
    if files:
        store = ArtifactStore(plan["artifactUrl"], plan.get("storageOptions") or None)
        print(f"fetching {len(files)} file(s) from {plan['artifactUrl']}", file=out, flush=True)
    started = time.monotonic()
    for entry in files:
        dest = _target(root, entry["path"])
        store.fetch(entry["digest"], dest, entry.get("mode"))
        actual = _sha256(dest)
        if actual != entry["digest"]:
            dest.unlink(missing_ok=True)
            raise ArtifactStoreError(
                f"{entry['path']}: content hash {actual[:12]} does not match the registered digest "
                f"{entry['digest'][:12]}; the artifact store holds a damaged blob. Fix: register the model "
                "again so that the blob is stored anew."
            )
        print(f"  {entry['path']} ({dest.stat().st_size} bytes)", file=out, flush=True)
    for relative in plan.get("inlinePaths", []):
        # ConfigMap volumes expose files through symlinks; copy the content, not the link.
        dest = _target(root, relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.join(plan["inlineSource"], relative), dest)
        print(f"  {relative} (source)", file=out, flush=True)
    count = len(files) + len(plan.get("inlinePaths", []))
    elapsed = time.monotonic() - started
    print(f"done: {count} file(s) in {elapsed:.1f} s; model dir {plan['modelDir']}", file=out)
    return count


def main(argv: list[str] | None = None) -> int:
    """Entry point of the init container; exit status 1 with the reason on failure."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modelport.compute.kubernetes.fetch PLAN.json", file=sys.stderr)
        return 2
    try:
        plan = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        run_plan(plan)
    except (ModelportError, OSError, KeyError, ValueError) as exc:
        print(f"fetch failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
