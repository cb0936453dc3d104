"""The node's environment cache: what a replica pod runs to get its environment in seconds.

A service whose environment lists packages gets them on the cluster as it does locally: the
local target's builder (:mod:`modelport.compute.envbuild`: the same translation of conda and pip
specs, the same notes, one uv-built virtualenv per content hash, built under a lock and renamed
into place when complete) runs in the pod's ``environment`` init container, against a cache
folder every pod of the node shares (a hostPath, or a volume claim). The first pod on a node
builds; the others, at once or later, find the environment built (or wait on the lock while it
builds) and start in seconds. No image is built and no registry is needed.

Two commands, both in the runtime image::

    python -m modelport.compute.kubernetes.envcache build     # the init container
    python -m modelport.compute.kubernetes.envcache run -- ARGS  # the replica: modelport serve ARGS

``build`` reads the environment (``MODELPORT_ENVIRONMENT``, its JSON definition), builds or
reuses it, marks it used now, then evicts least-recently-used environments that no running
replica holds until the cache is within ``MODELPORT_ENV_CACHE_MAX_BYTES``. A failure is written
to the container's termination message (the installer's own error), which the target reads into
``EnvironmentBuildFailed``. ``run`` holds a shared lock on the environment for the life of the
replica (the lock survives ``exec``: the replica process itself holds it), so eviction never
removes an environment a replica runs in, then becomes ``modelport serve`` in the environment's
Python. Environments used within the last ``EVICTION_GRACE_S`` are never evicted either: that
covers a pod between its init container and its replica, and a replica restarting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelport import __version__

ENVIRONMENT_ENV = "MODELPORT_ENVIRONMENT"
CACHE_ENV = "MODELPORT_ENV_CACHE"
MAX_BYTES_ENV = "MODELPORT_ENV_CACHE_MAX_BYTES"
HASH_ENV = "MODELPORT_ENV_HASH"
DEFAULT_MAX_BYTES = 20 * 1024**3
EVICTION_GRACE_S = 15 * 60
# Where Kubernetes reads a container's termination message (terminationMessagePath's default).
TERMINATION_LOG_ENV = "MODELPORT_TERMINATION_LOG"
TERMINATION_LOG = "/dev/termination-log"
# Where uv keeps downloaded wheels, inside the cache: a cold build of a second environment on the
# node reuses the wheels the first one fetched. It counts against the cap and is cleared last.
UV_CACHE = ".uv-cache"
LOCKS = ".locks"
LAST_USED = ".last-used"


def cache_root(base: Path) -> Path:
    """The part of the node cache for this modelport and Python: a virtualenv links the running
    modelport and is made from the running interpreter, so images that differ in either never
    share one."""
    return base / f"modelport-{__version__}-py{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class CachedEnvironment:
    """One built environment in the cache: its folder, size and when a pod last used it."""

    path: Path
    size: int
    last_used: float


class NodeCache:
    """The environments of one node cache folder: build, mark used, hold and evict."""

    def __init__(self, base: Path) -> None:
        self.root = cache_root(base)

    def env_dir(self, content_hash: str) -> Path:
        """The virtualenv of ``content_hash`` (present once built)."""
        return self.root / content_hash

    def use_lock(self, content_hash: str) -> Path:
        """The file a running replica holds a shared lock on, and eviction an exclusive one."""
        return self.root / LOCKS / f"{content_hash}.use"

    def mark_used(self, content_hash: str) -> None:
        """Record that a pod starts on ``content_hash`` now (eviction is least recently used first).

        Lock and stamp files are writable by every user: the init container may build as root
        while the replica runs as the image's user, and both mark the environment used.
        """
        for path in (self.use_lock(content_hash), self.env_dir(content_hash) / LAST_USED):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            with contextlib.suppress(PermissionError):  # another user created it, writable already
                path.chmod(0o666)
            os.utime(path)

    @contextlib.contextmanager
    def _exclusive(self, content_hash: str) -> Iterator[bool]:
        """An exclusive, non-blocking lock on an environment: True when no replica holds it."""
        path = self.use_lock(content_hash)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def environments(self) -> list[CachedEnvironment]:
        """The built environments, least recently used first."""
        found = []
        for path in self.root.iterdir() if self.root.is_dir() else ():
            if path.name.startswith(".") or not path.is_dir():
                continue
            stamp = path / LAST_USED
            last_used = (stamp if stamp.exists() else path).stat().st_mtime
            found.append(CachedEnvironment(path, _disk_usage(path), last_used))
        return sorted(found, key=lambda env: env.last_used)

    def evict(self, max_bytes: int, keep: str, now: float | None = None) -> list[str]:
        """Remove least-recently-used environments no replica holds until the cache fits ``max_bytes``.

        ``keep`` (the environment this pod is about to run) and any environment used within the
        grace period stay; the uv download cache goes last. Returns what was removed.
        """
        now = time.time() if now is None else now
        envs = self.environments()
        uv_cache = self.root / UV_CACHE
        total = sum(env.size for env in envs) + _disk_usage(uv_cache)
        removed: list[str] = []
        for env in envs:
            if total <= max_bytes:
                break
            if env.path.name == keep or now - env.last_used < EVICTION_GRACE_S:
                continue
            with self._exclusive(env.path.name) as free:
                if not free:
                    continue
                retired = env.path.with_name(f".retired-{env.path.name}-{os.getpid()}")
                env.path.rename(retired)  # gone for every reader at once; the removal may take a while
                shutil.rmtree(retired, ignore_errors=True)
            total -= env.size
            removed.append(f"{env.path.name} ({env.size / 1024**2:.0f} MiB)")
        if total > max_bytes and uv_cache.exists():
            size = _disk_usage(uv_cache)
            shutil.rmtree(uv_cache, ignore_errors=True)
            removed.append(f"{UV_CACHE} ({size / 1024**2:.0f} MiB)")
        return removed


def _disk_usage(path: Path) -> int:
    """Bytes a folder takes on disk (0 when missing); symlinks are not followed."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


def build(environ: dict[str, str] | None = None) -> int:
    """The init container: build or reuse the pod's environment, then make room; exit status."""
    from modelport.compute.envbuild import EnvironmentBuilder, EnvironmentBuildError
    from modelport.registry.environment import Environment

    env = dict(os.environ if environ is None else environ)
    cache = NodeCache(Path(env[CACHE_ENV]))
    environment = Environment.from_dict(json.loads(env[ENVIRONMENT_ENV]))
    expected = env.get(HASH_ENV)
    if expected and expected != environment.content_hash:  # the replica would look for another folder
        _terminate_with(
            env,
            f"Environment {environment.name!r}: its definition hashes to {environment.content_hash[:12]}, "
            f"but the pod was made for {expected[:12]}. Fix: deploy with the same modelport version as "
            "the runtime image.",
        )
        return 1
    # Compiled at build time: the replica's user cannot write bytecode into the root-owned cache,
    # and without it every replica start would compile scikit-learn and its kin again.
    builder = EnvironmentBuilder(cache.root, uv_cache_dir=cache.root / UV_CACHE, compile_bytecode=True)
    cache.root.mkdir(parents=True, exist_ok=True)
    try:
        builder.python_for(environment, log=lambda line: print(line, flush=True))
    except EnvironmentBuildError as exc:
        print(exc.log_tail, flush=True)
        _terminate_with(env, f"{exc.message}\n{exc.log_tail}")
        return 1
    cache.mark_used(environment.content_hash)
    limit = int(env.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES)
    for removed in cache.evict(limit, keep=environment.content_hash):
        print(f"Evicted {removed} from the node cache (least recently used; over {limit} bytes).")
    return 0


def _terminate_with(env: dict[str, str], message: str) -> None:
    """Write ``message`` where Kubernetes reads a container's termination message (4 KiB kept:
    the head, which names the environment and the fix, and as much of the installer's tail as fits)."""
    text = message if len(message) <= 4000 else message[:1500] + "\n...\n" + message[-2400:]
    with contextlib.suppress(OSError):
        Path(env.get(TERMINATION_LOG_ENV, TERMINATION_LOG)).write_text(text, encoding="utf-8")


def run(args: Sequence[str], environ: dict[str, str] | None = None) -> int:
    """The replica: hold the environment for the life of this process, then become ``modelport serve``."""
    env = dict(os.environ if environ is None else environ)
    cache = NodeCache(Path(env[CACHE_ENV]))
    content_hash = env[HASH_ENV]
    python = cache.env_dir(content_hash) / "bin" / "python"
    if not python.exists():
        message = (
            f"Environment {content_hash[:12]} is not in the node cache at {cache.root}; the pod's "
            "environment init container builds it. Fix: delete the pod (its replacement builds it again)."
        )
        print(message, file=sys.stderr)
        _terminate_with(env, message)
        return 1
    cache.mark_used(content_hash)
    holder = os.open(cache.use_lock(content_hash), os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_SH)
    os.set_inheritable(holder, True)  # the lock belongs to the open file, which the exec keeps
    os.execv(python, [str(python), "-m", "modelport", "serve", *args])


def main(argv: Sequence[str] | None = None) -> int:
    """``build`` or ``run -- ARGS``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"]:
        return build()
    if args[:1] == ["run"]:
        rest = args[1:]
        return run(rest[1:] if rest[:1] == ["--"] else rest)
    print("usage: python -m modelport.compute.kubernetes.envcache build | run -- SERVE-ARGS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
