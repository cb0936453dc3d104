"""Materialise environments for the local target: one uv-built virtualenv per environment content hash.

``EnvironmentBuilder(cache_root).python_for(env)`` returns a Python executable that runs
``python -m modelport serve`` with the environment's packages importable. The virtualenv lives in
``<cache_root>/<content_hash>/`` and is built at most once per hash:

* built in ``<cache_root>/.build-<hash>/`` and renamed into place only when complete, so the cache
  holds complete environments or nothing (a failed or killed build leaves nothing there);
* under a file lock per hash, so that concurrent builders of one hash build it once and the
  others wait and reuse it;
* with ``uv venv`` + ``uv pip install`` and uv's wheel cache, never downloading an interpreter.

modelport itself is not installed into the venv: its runtime dependencies are (resolved together
with the user's packages, so a conflict is uv's error, never a silent downgrade), and a symlink in
the venv's site-packages points at the running modelport package. What the spec asks for is
translated by :mod:`modelport.compute.envplan`. Decisions: docs/environments.md, "How the
local target builds environments".
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import uv

import modelport
from modelport._io import atomic_write_text, file_lock
from modelport.compute.envplan import (
    InstallPlan,
    minimum_runtime_python,
    plan_install,
    runtime_fingerprint,
    runtime_requirements,
)
from modelport.errors import ModelportError
from modelport.registry.conda import package_name
from modelport.registry.environment import DEFAULT_INTERPRETER, Environment

Log = Callable[[str], None]

MANIFEST = "modelport-env.json"
BUILD_LOG = "build.log"
USER_REQUIREMENTS = "requirements.txt"
RUNTIME_REQUIREMENTS = "modelport-runtime.txt"
# Lines of installer output kept for the error: uv's resolution errors fit well within this.
_TAIL_LINES = 40
# What every replica runs (`python -m modelport serve`, its server and worker modules, and the
# flags the agent passes: an older modelport of a user-managed interpreter lacks --unix_socket or
# --parent_fd): a venv that cannot do this is not an environment for the local target.
_SMOKE_CODE = (
    "import modelport.runtime.server, modelport.runtime.worker\n"
    "from modelport.runtime.serve_cli import parse\n"
    "parse(['--unix_socket', '@check', '--parent_fd', '0'])"
)


class EnvironmentBuildError(ModelportError):
    """An environment could not be built or used; ``log_tail`` holds the installer's own error."""

    code = "EnvironmentBuildFailed"

    def __init__(self, message: str, *, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


class EnvironmentBuilder:
    """Builds and caches one virtualenv per environment content hash under ``cache_root``."""

    def __init__(
        self, cache_root: Path, *, uv_cache_dir: Path | None = None, compile_bytecode: bool = False
    ) -> None:
        """``uv_cache_dir``: uv's wheel cache; None uses uv's default (or ``$UV_CACHE_DIR``), shared
        with every other uv use of this user, so that cold builds reuse wheels already downloaded.
        ``compile_bytecode``: compile every installed module at build time, for replicas that cannot
        write their own bytecode into the environment (a pod's user on a cache root owns)."""
        self.cache_root = Path(cache_root)
        self.uv_cache_dir = uv_cache_dir
        self.compile_bytecode = compile_bytecode
        self._uv = uv.find_uv_bin()
        self._runtime = runtime_requirements()
        self._fingerprint = runtime_fingerprint(self._runtime)
        # Interpreters of user-managed environments already checked to import modelport.
        self._usable_interpreters: set[Path] = set()

    def env_dir(self, env: Environment) -> Path:
        """The folder of ``env``'s virtualenv (it exists once built)."""
        return self.cache_root / env.content_hash

    def is_built(self, env: Environment) -> bool:
        """True when :meth:`python_for` returns without building (always, for a user-managed env)."""
        return env.python.user_managed_dependencies or self._cached_python(env) is not None

    def python_for(self, env: Environment, log: Log = print) -> Path:
        """Return a Python executable that can run `python -m modelport serve` with the
        environment's packages importable; build (once per env.content_hash) if needed.

        Every step goes through ``log``. Raises :class:`EnvironmentBuildError` when the build fails
        (``log_tail``: uv's error) or a user-managed interpreter cannot run modelport.
        """
        if env.python.user_managed_dependencies:
            return self._user_managed_python(env, log)
        label = f"{env.name!r} ({env.content_hash[:12]})"
        cached = self._cached_python(env)
        if cached is not None:
            log(f"Environment {label} is already built at {self.env_dir(env)}; reusing it.")
            return cached
        lock = self.cache_root / ".locks" / f"{env.content_hash}.lock"
        log(f"Locking {lock} (this waits while another process builds the same environment).")
        with file_lock(lock):
            cached = self._cached_python(env)
            if cached is not None:
                log(f"Environment {label} was built meanwhile by another process; reusing it.")
                return cached
            return self._build(env, label, log)

    # -- cache --------------------------------------------------------------------------------

    def _cached_python(self, env: Environment) -> Path | None:
        target = self.env_dir(env)
        try:
            manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        # Built for another modelport runtime (an upgrade changed its dependencies), or the modelport
        # it links to was moved or uninstalled since: rebuild.
        if manifest.get("runtimeFingerprint") != self._fingerprint:
            return None
        if not (target / manifest.get("modelportLink", "")).is_dir():
            return None
        return _venv_python(target)

    def _build(self, env: Environment, label: str, log: Log) -> Path:
        started = time.monotonic()
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(line)
            log(line)

        target = self.env_dir(env)
        staging = self.cache_root / f".build-{env.content_hash}"
        # Only a killed build leaves these behind, and this process holds the lock of the hash now.
        for leftover in (staging, *self.cache_root.glob(f".retired-{env.content_hash}-*")):
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            say(f"Building environment {label} in {target} with uv.")
            plan = plan_install(env)
            for note in plan.notes:
                say(f"  {note}")
            python = self._interpreter(plan.python_request, say)
            link = self._install(plan, python, staging, label, say)
            say(f"Built environment {label} in {time.monotonic() - started:.1f} s.")
            (staging / BUILD_LOG).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            manifest = {
                "contentHash": env.content_hash,
                "buildSpec": env.build_spec(),
                "python": python,
                "requirements": list(plan.requirements),
                "runtimeRequirements": list(self._runtime),
                "runtimeFingerprint": self._fingerprint,
                "modelportLink": str(link.relative_to(staging)),
                "seconds": round(time.monotonic() - started, 2),
            }
            atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2))
            _move_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _venv_python(target)

    # -- steps --------------------------------------------------------------------------------

    def _interpreter(self, request: str | None, say: Log) -> str:
        """The interpreter the venv is made from: the requested version if this machine has it."""
        running = platform.python_version()
        here = f"the running interpreter {running} ({sys.executable})"
        if request is None:
            say(f"Python: no version pinned; using {here}.")
            return sys.executable
        numeric = re.fullmatch(r"\d+(\.\d+){0,2}", request)
        if numeric and running.split(".")[: request.count(".") + 1] == request.split("."):
            say(f"Python {request}: using {here}.")
            return sys.executable
        minimum = ".".join(map(str, minimum_runtime_python()))
        if numeric and tuple(int(part) for part in request.split(".")[:2]) < minimum_runtime_python():
            say(
                f"Python {request} was requested, but modelport's runtime needs Python >= {minimum}; "
                f"using {here} instead. Pin python={minimum} or newer to choose the version yourself."
            )
            return sys.executable
        query = request if numeric else f"{request},>={minimum}"
        found = subprocess.run(
            [self._uv, "python", "find", query], env=self._uv_env(), capture_output=True, text=True
        )
        if found.returncode == 0 and found.stdout.strip():
            path = found.stdout.strip().splitlines()[-1]
            say(f"Python {request}: using {path}.")
            return path
        reason = (found.stderr.strip().splitlines() or ["not found"])[0]
        say(
            f"Python {request} was requested but is not installed on this machine ({reason}); using "
            f"{here} instead (modelport never downloads interpreters). Install Python {request} "
            "where uv finds it to get it."
        )
        return sys.executable

    def _install(self, plan: InstallPlan, python: str, staging: Path, label: str, say: Log) -> Path:
        """Create the venv in ``staging``, install into it and check it; return the modelport link."""
        venv = [self._uv, "venv", "--relocatable", "--no-project", "--python", python, str(staging)]
        self._run(venv, plan, label, say, what="create the virtualenv")
        (staging / USER_REQUIREMENTS).write_text(plan.requirements_text(), encoding="utf-8")
        (staging / RUNTIME_REQUIREMENTS).write_text("".join(f"{r}\n" for r in self._runtime), "utf-8")
        say(
            f"Installing {len(plan.requirements)} package(s) of the environment with modelport's runtime "
            f"({', '.join(package_name(r) for r in self._runtime)})."
        )
        install = [self._uv, "pip", "install", "--python", str(_venv_python(staging))]
        install += ["-r", str(staging / USER_REQUIREMENTS), "-r", str(staging / RUNTIME_REQUIREMENTS)]
        if plan.prerelease:
            install += ["--prerelease", "allow"]
        if self.compile_bytecode:
            install.append("--compile-bytecode")
        self._run(install, plan, label, say, what="install the packages")
        # The running modelport package, seen by name only: a .pth to its parent folder would
        # also expose every other package installed beside it.
        package = Path(modelport.__file__).resolve().parent
        link = _site_packages(staging) / "modelport"
        link.symlink_to(package)
        say(f"Linked modelport {modelport.__version__} from {package}.")
        say("Checking that modelport's runtime starts in the environment.")
        tail = _smoke_failure(_venv_python(staging))
        if tail is not None:
            say(tail)
            raise EnvironmentBuildError(
                f"Environment {label} was installed, but modelport's runtime does not start in it "
                f"(`python -m modelport serve` failed: {_last_line(tail)}). Fix: a package of the "
                "environment replaced one that modelport needs; relax that pin, or report it as a "
                "modelport bug if the environment pins nothing related.",
                log_tail=tail,
            )
        return link

    def _run(self, command: list[str], plan: InstallPlan, label: str, say: Log, *, what: str) -> None:
        """Run uv, streaming its output lines to the log; a failure becomes EnvironmentBuildError."""
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        with subprocess.Popen(
            command,
            cwd=self.cache_root,
            env=self._uv_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                say(f"  uv | {line}")
        if process.returncode != 0:
            text = "\n".join(tail)
            raise EnvironmentBuildError(
                _failure_message(label, what, plan, self._runtime, text), log_tail=text
            )

    def _uv_env(self) -> dict[str, str]:
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", NO_COLOR="1", UV_NO_PROGRESS="1")
        if self.uv_cache_dir is not None:
            env["UV_CACHE_DIR"] = str(self.uv_cache_dir)
        return env

    # -- user-managed -------------------------------------------------------------------------

    def _user_managed_python(self, env: Environment, log: Log) -> Path:
        wanted = env.python.interpreter_path
        if wanted == DEFAULT_INTERPRETER:
            log(
                f"Environment {env.name!r} is user-managed: using the workspace's own Python "
                f"({sys.executable}) as it is, nothing is built."
            )
            return Path(sys.executable)
        found = shutil.which(wanted)
        if found is None:
            raise EnvironmentBuildError(
                f"Environment {env.name!r} is user-managed, and its interpreter {wanted!r} does not exist "
                "or is not executable. Fix: set python.interpreter_path to a Python with modelport "
                "installed, or set python.user_managed_dependencies = False to have modelport build one.",
                log_tail="",
            )
        interpreter = Path(found).absolute()
        log(f"Environment {env.name!r} is user-managed: using {interpreter} as it is, nothing is built.")
        if interpreter not in self._usable_interpreters:
            tail = _smoke_failure(interpreter)
            if tail is not None:
                raise EnvironmentBuildError(
                    f"Environment {env.name!r} is user-managed, and its interpreter {interpreter} cannot "
                    f"run modelport's runtime ({_last_line(tail)}). Fix: `{interpreter} -m pip install "
                    f"modelport=={modelport.__version__}` (the agent's version), or set "
                    "python.user_managed_dependencies = False to have modelport build the environment.",
                    log_tail=tail,
                )
            self._usable_interpreters.add(interpreter)
        return interpreter


def _smoke_failure(python: Path) -> str | None:
    """Import modelport's runtime with ``python``; return the tail of its output if that fails.

    Bytecode writing is switched on for it even where PYTHONDONTWRITEBYTECODE is set, so that the
    runtime's modules are compiled once here instead of by every replica start (about 1 s each);
    compiling every installed file instead (uv --compile-bytecode) costs around 10 s per build.
    """
    hidden = ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    check = subprocess.run(
        [str(python), "-c", _SMOKE_CODE], capture_output=True, text=True, env=env, cwd=python.parent
    )
    if check.returncode == 0:
        return None
    return "\n".join((check.stdout + check.stderr).strip().splitlines()[-_TAIL_LINES:])


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python*/site-packages")
    return found


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the complete build to its cache folder, replacing one built for an older runtime."""
    if target.exists():
        retired = target.with_name(f".retired-{target.name}-{os.getpid()}")
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(target)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _names_in(text: str, requirements: tuple[str, ...]) -> list[str]:
    """The distributions among ``requirements`` that the installer's output names."""
    names = []
    for name in dict.fromkeys(package_name(r) for r in requirements):
        pattern = r"(?<![\w.-])" + re.escape(name).replace(r"\-", "[-_.]") + r"(?![\w-])"
        if re.search(pattern, text, re.IGNORECASE):
            names.append(name)
    return names


def _failure_message(label: str, what: str, plan: InstallPlan, runtime: tuple[str, ...], text: str) -> str:
    """One line naming the environment, the packages uv complained about, uv's reason and the fix."""
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith(("error:", "cause:"))]
    reason = (causes[-1].split(":", 1)[1] if causes else _last_line(text)).strip().rstrip(".")
    culprits = _names_in(text, plan.requirements)
    head = f"Environment {label}: uv could not {what}"
    if not culprits:
        return (
            f"{head}: {reason}. Fix: read the installer's output below; check that the package index "
            "is reachable from this machine."
        )
    named = ", ".join(culprits)
    runtime_names = {package_name(r): r for r in runtime}
    clashes = [name for name in culprits if name in runtime_names]
    if clashes:
        fix = "; ".join(
            f"{name} is also required by modelport's runtime as {runtime_names[name]!r}: pin a compatible "
            "version or leave it unpinned"
            for name in clashes
        )
    elif any(name in plan.from_conda for name in culprits):
        fix = "; ".join(
            f"conda package {plan.from_conda[name]!r} was looked up on PyPI as {name!r}: list it under "
            "pip: with its PyPI name and version, or remove it"
            for name in culprits
            if name in plan.from_conda
        )
    else:
        fix = f"check the name and version of {named} on https://pypi.org, or remove it from the pip packages"
    return f"{head} ({named}): {reason}. Fix: {fix}."
