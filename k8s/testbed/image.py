"""The real node's images, built without a container daemon and cached as OCI archives.

* **base**: a Debian bookworm root filesystem with Python 3.11 and pip, made by ``mmdebstrap``
  from Debian packages (no registry outside is reachable here, so ``python:3.11-slim-bookworm``
  cannot be pulled) and imported with ``buildah``.
* **pause**: the pod sandbox's process (``pause.c``, built static by ``build-node.sh``), alone in
  an image ``FROM scratch``.
* **runtime**: ``k8s/Dockerfile`` built by ``buildah bud`` on the base above (``--build-arg
  BASE_IMAGE``); its ``pip install`` reaches the package index, as any image build does.

Each archive is named by a hash of what made it (recipe, inputs, the base's key), under
``$MODELPORT_K8S_CACHE/images`` (default ~/.cache/modelport-k8s/images), so an unchanged input
costs nothing and a changed one builds anew. buildah keeps its storage (vfs driver, chroot
isolation: no overlay or user namespace needed) in that folder too. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "k8s" / "Dockerfile"
# What the runtime image is built from: the Dockerfile's COPY sources and the Dockerfile itself.
RUNTIME_INPUTS = ("k8s/Dockerfile", "pyproject.toml", "README.md", "src")
BASE_NAME = "localhost/modelport/base:bookworm"
PAUSE_NAME = "localhost/modelport/pause:testbed"
RUNTIME_NAME = "localhost/modelport/runtime:testbed"
# Debian's python3 stands in for the python:3.11-slim image: `python` on PATH, pip allowed to
# install system-wide (the image is the environment, as in the official image).
MMDEBSTRAP = (
    "mmdebstrap",
    "--variant=minbase",
    "--include=python3,python3-pip,python-is-python3,ca-certificates",
    '--customize-hook=rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED',
    '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
    '--aptopt=Acquire::Check-Valid-Until "false"',
    "bookworm",
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class ImageError(RuntimeError):
    """An image step failed; the message names the command and the end of its output."""


def cache_dir() -> Path:
    """``$MODELPORT_K8S_CACHE/images`` (default ~/.cache/modelport-k8s/images)."""
    base = os.environ.get("MODELPORT_K8S_CACHE") or str(Path.home() / ".cache" / "modelport-k8s")
    return Path(base) / "images"


def _say(message: str) -> None:
    print(f"k8s-testbed: {message}", file=sys.stderr, flush=True)


def _run(args: Sequence[str], **kwargs: object) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise ImageError(f"{' '.join(args[:3])} ... failed with status {result.returncode}:\n{tail}")
    return str(result.stdout)


def _key(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


def _tree_bytes(relative: Iterable[str]) -> Iterable[bytes]:
    for name in relative:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            yield str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes()


def buildah(*args: str) -> list[str]:
    """The buildah command line with the testbed's own storage (vfs, chroot isolation)."""
    store = cache_dir() / "buildah"
    return [
        "buildah",
        "--root",
        str(store / "root"),
        "--runroot",
        str(store / "run"),
        "--storage-driver",
        "vfs",
        *args,
    ]


def _cached(kind: str, key: str, make: object) -> Path:
    archive = cache_dir() / f"{kind}-{key}.tar"
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = archive.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    make(partial)  # type: ignore[operator]
    os.replace(partial, archive)
    _say(f"{kind} image built in {time.monotonic() - started:.0f} s: {archive}")
    return archive


def _from_rootfs(rootfs: Path, name: str, config: Sequence[str], archive: Path) -> None:
    container = _run(buildah("from", "scratch")).strip()
    try:
        _run(buildah("add", container, str(rootfs), "/"))
        _run(buildah("config", *config, container))
        _run(buildah("commit", "--rm", container, name))
    except BaseException:
        subprocess.run(buildah("rm", container), capture_output=True)
        raise
    _run(buildah("push", name, f"oci-archive:{archive}:{name}"))


def base_image() -> Path:
    """The base image's archive (built by mmdebstrap once per recipe, about a minute)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    recipe = "\0".join(MMDEBSTRAP).encode()
    key = _key([recipe, sources.read_bytes() if sources.is_file() else b""])

    def make(archive: Path) -> None:
        _say("making the base image's root filesystem with mmdebstrap")
        rootfs = archive.with_suffix(".rootfs.tar")
        mirror = [str(sources)] if sources.is_file() else []
        try:
            _run([*MMDEBSTRAP, str(rootfs), *mirror])
            env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            _from_rootfs(
                rootfs, BASE_NAME, ["--env", env, "--env", "LANG=C.UTF-8", "--cmd", "python3"], archive
            )
        finally:
            rootfs.unlink(missing_ok=True)

    return _cached("base", key, make)


def pause_image(pause_binary: Path) -> Path:
    """The pause image's archive: ``pause_binary`` as /pause, the entrypoint, in an image of its own."""
    key = _key([pause_binary.read_bytes()])

    def make(archive: Path) -> None:
        staging = archive.with_suffix(".d")
        staging.mkdir(exist_ok=True)
        tarball = archive.with_suffix(".rootfs.tar")
        try:
            (staging / "pause").write_bytes(pause_binary.read_bytes())
            (staging / "pause").chmod(0o755)
            _run(["tar", "-C", str(staging), "-cf", str(tarball), "pause"])
            _from_rootfs(tarball, PAUSE_NAME, ["--entrypoint", '["/pause"]'], archive)
        finally:
            tarball.unlink(missing_ok=True)
            (staging / "pause").unlink(missing_ok=True)
            staging.rmdir()

    return _cached("pause", key, make)


def _load(archive: Path, name: str) -> None:
    """Make ``name`` present in buildah's storage (it is after a build; load it from the cache otherwise)."""
    if subprocess.run(buildah("inspect", "--type", "image", name), capture_output=True).returncode != 0:
        _run(buildah("pull", f"oci-archive:{archive}"))


def build_from_dockerfile(
    kind: str,
    context: Path,
    dockerfile: Path,
    name: str,
    base: tuple[Path, str],
    inputs: Iterable[bytes],
    prefix: Sequence[str] = (),
) -> Path:
    """``buildah bud`` of ``dockerfile`` in ``context`` on the base image ``base`` (archive, name),
    cached under ``kind`` by the base's archive and ``inputs``; ``prefix`` runs the build where
    the package index is reachable (``nsenter --net=...`` from inside the node's namespace)."""
    key = _key([base[0].name.encode(), dockerfile.read_bytes(), *inputs])

    def make(archive: Path) -> None:
        _load(*base)
        _say(f"building the {kind} image with buildah (pip installs from the package index)")
        volumes = []
        if HOST_CA_BUNDLE.is_file():
            # The build's own RUN steps fetch packages through this machine's egress, which may
            # present a local certificate authority: lend them the host's bundle, read-only.
            volumes = ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
        _run(
            [
                *prefix,
                *buildah(
                    "bud",
                    "--isolation",
                    "chroot",
                    "--pull-never",
                    "--layers=false",
                    *volumes,
                    "--build-arg",
                    f"BASE_IMAGE={base[1]}",
                    "-f",
                    str(dockerfile),
                    "-t",
                    name,
                    str(context),
                ),
            ]
        )
        _run(buildah("push", name, f"oci-archive:{archive}:{name}"))

    return _cached(kind, key, make)


def runtime_image() -> Path:
    """The runtime image's archive: k8s/Dockerfile on the base image (a few minutes, then cached)."""
    base = (base_image(), BASE_NAME)
    return build_from_dockerfile("runtime", ROOT, DOCKERFILE, RUNTIME_NAME, base, _tree_bytes(RUNTIME_INPUTS))


def push(archive: Path, name: str, reference: str, prefix: Sequence[str]) -> None:
    """Push image ``name`` (loaded from ``archive`` when buildah's storage lacks it) to
    ``reference`` over plain HTTP; buildah runs under ``prefix`` (``nsenter --net=...``), since the
    testbed registry exists only inside the node's network namespace."""
    _load(archive, name)
    _run([*prefix, *buildah("push", "--tls-verify=false", name, f"docker://{reference}")])
