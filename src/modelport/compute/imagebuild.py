"""Build and push container images with the builder this machine has, and ask a registry for a tag.

Image mode (docs/environments.md, "Image mode") turns an environment into an image on the user's
machine, as Azure ML did in its own cloud: the build context comes from
:mod:`modelport.compute.kubernetes.build_context`, and this module runs the build and the push
with docker, podman or buildah, whichever works here (docker only with a daemon it reaches). The
output of the builder is streamed line by line, because an image build takes minutes and a silent
one was Azure ML's most reported pain. Whether a registry already has an image is asked through
the registry's v2 API (a ``HEAD`` of the manifest), so an unchanged environment is never rebuilt.

Nothing here knows about clusters: the Kubernetes target and ``Model.package`` both call it.
Credentials never appear on a command line: they go into a temporary auth file the builder reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from modelport.errors import ModelportError
from modelport.registry.environment import Environment

BuilderName = Literal["docker", "podman", "buildah"]
BUILDERS: tuple[BuilderName, ...] = ("docker", "podman", "buildah")
OnLine = Callable[[str], None]

# Lines of the builder's output kept for the error: a failed RUN step's message fits well within it.
_TAIL_LINES = 40
_PROBE_TIMEOUT_S = 20.0
_REGISTRY_TIMEOUT_S = 30.0
DOCKER_HUB = "registry-1.docker.io"
# What a HEAD of a manifest accepts: single-platform and multi-platform images, Docker's and OCI's.
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class ImageBuildError(ModelportError):
    """An image could not be built, pushed or looked up; ``log_tail`` holds the builder's own output.

    A plain :class:`ModelportError`, as :class:`~modelport.compute.envbuild.EnvironmentBuildError`
    is: the cause may be the machine (no builder), the environment (a package that does not
    install) or the registry (refused credentials), and the message names which and the fix.
    """

    code = "ImageBuildFailed"

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class Builder:
    """A container image builder that works on this machine."""

    name: BuilderName
    executable: str


@dataclass(frozen=True)
class RegistryCredentials:
    """A registry user and password (or token), as a push and a pull secret need them."""

    username: str
    password: str


def _probe(name: BuilderName, executable: str) -> str | None:
    """Why ``executable`` cannot build images here, or None when it can."""
    # docker is a client: without a daemon it reaches, it builds nothing. podman and buildah need
    # no daemon; running them at all shows that their storage can be opened.
    try:
        done = subprocess.run([executable, "info"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"`{name} info` did not answer within {_PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"`{executable}` cannot be run ({exc.strerror})"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    if name == "docker":
        return f"the docker daemon is not reachable (`docker info`: {reason})"
    return f"`{name} info` failed: {reason}"


def detect_builder(preferred: str | None = None) -> Builder:
    """The first builder that works here: ``preferred`` alone when given, else docker, podman, buildah.

    Raises :class:`ImageBuildError` naming what to install and why each candidate was passed over.
    """
    if preferred is not None and preferred not in BUILDERS:
        raise ImageBuildError(
            f"Image builder {preferred!r} is not one modelport runs. "
            f"Fix: choose one of {', '.join(BUILDERS)}."
        )
    reasons = []
    for name in BUILDERS:
        if preferred is not None and name != preferred:
            continue
        executable = shutil.which(name)
        if executable is None:
            reasons.append(f"{name}: not found on PATH")
            continue
        reason = _probe(name, executable)
        if reason is None:
            return Builder(name, executable)
        reasons.append(f"{name} ({executable}): {reason}")
    if preferred is None:
        fix = "install docker (with its daemon running), podman or buildah, or start the docker daemon"
    elif preferred == "docker":
        fix = "install docker and start its daemon, or leave the builder unchosen to use podman or buildah"
    else:
        fix = f"install {preferred}, or leave the builder unchosen to use another"
    raise ImageBuildError(
        f"No container image builder works on this machine ({'; '.join(reasons)}). "
        f"Fix: {fix}; then build again."
    )


def _stream(command: Sequence[str], on_line: OnLine, what: str, fix: str) -> None:
    """Run ``command``, handing each output line to ``on_line``; a failure is ImageBuildError."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise ImageBuildError(
            f"Could not {what}: {command[0]} cannot be run ({exc.strerror}). Fix: {fix}."
        ) from exc
    with process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            on_line(line)
    if process.returncode != 0:
        text = "\n".join(tail)
        last = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
        raise ImageBuildError(
            f"Could not {what} (exit status {process.returncode}: {last}). Fix: {fix}.", log_tail=text
        )


def build_image(
    builder: Builder,
    context_dir: Path,
    reference: str,
    *,
    build_args: Mapping[str, str] | None = None,
    on_line: OnLine,
    pull_insecure: bool = False,
) -> None:
    """Build the Dockerfile of ``context_dir`` as ``reference``, streaming the builder's output.

    ``pull_insecure``: the base image comes from a registry over plain HTTP (podman and buildah
    take it per build; docker from its daemon's ``insecure-registries``, which a line says).
    """
    command = [builder.executable, "bud" if builder.name == "buildah" else "build", "-t", reference]
    for key, value in (build_args or {}).items():
        command += ["--build-arg", f"{key}={value}"]
    if pull_insecure:
        if builder.name == "docker":
            on_line("docker pulls over plain HTTP only from registries in its daemon's insecure-registries.")
        else:
            command.append("--tls-verify=false")
    command.append(str(context_dir))
    _stream(
        command,
        on_line,
        f"build image {reference} with {builder.name}",
        "read the build output above: a package that does not install names itself there",
    )


def _auths(registry: str, credentials: RegistryCredentials) -> dict[str, object]:
    """The ``auths`` document docker, podman and buildah read (a dockerconfigjson Secret holds it too)."""
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    entry = {"username": credentials.username, "password": credentials.password, "auth": token}
    return {"auths": {registry: entry}}


def docker_config_json(registry: str, credentials: RegistryCredentials) -> str:
    """``.dockerconfigjson`` for ``registry`` (its host, as pulls name it) with ``credentials``."""
    return json.dumps(_auths(registry_host(registry), credentials), sort_keys=True)


@contextmanager
def _auth_file(reference: str, credentials: RegistryCredentials | None) -> Iterator[Path | None]:
    """A private temporary auth file for the push (never the user's own docker config, never argv)."""
    if credentials is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="modelport-auth-") as folder:
        path = Path(folder) / "config.json"
        path.touch(mode=0o600)
        path.write_text(docker_config_json(reference, credentials), encoding="utf-8")
        yield path


def push_image(
    builder: Builder,
    reference: str,
    *,
    credentials: RegistryCredentials | None,
    insecure: bool,
    on_line: OnLine,
) -> None:
    """Push the built image ``reference`` to its registry, streaming the builder's output."""
    with _auth_file(reference, credentials) as auth:
        if builder.name == "docker":
            # docker reads credentials from a config folder only; a private one leaves the user's alone.
            command = [
                builder.executable,
                *(["--config", str(auth.parent)] if auth else []),
                "push",
                reference,
            ]
            if insecure:
                on_line(
                    "docker pushes over plain HTTP only to registries in its daemon's insecure-registries."
                )
        else:
            command = [builder.executable, "push", *(["--authfile", str(auth)] if auth else [])]
            command += [*(["--tls-verify=false"] if insecure else []), reference]
            if builder.name == "buildah":
                command.append(f"docker://{reference}")
        _stream(
            command,
            on_line,
            f"push image {reference} with {builder.name}",
            "check the registry's address and credentials (computetarget attach --registry, "
            "--registry-username, --registry-password), and --registry-insecure for a plain-HTTP registry",
        )


@dataclass(frozen=True)
class ImageReference:
    """An image reference split as a registry's API needs it."""

    host: str  # as the API is reached (Docker Hub's references name no host)
    repository: str
    tag: str  # or a digest (sha256:...)


def registry_host(value: str) -> str:
    """The registry host of a ``HOST[/PREFIX]`` registry setting or of an image reference that
    names its host (``docker.io`` for Docker Hub's short forms)."""
    first = value.split("/", 1)[0]
    return first if "." in first or ":" in first or first == "localhost" else "docker.io"


def parse_reference(reference: str) -> ImageReference:
    """``HOST/REPO:TAG`` (or ``@sha256:...``) as host, repository and tag; Docker Hub's short forms too."""
    name, digest = reference.split("@", 1) if "@" in reference else (reference, None)
    last = name.rsplit("/", 1)[-1]
    tag = "latest"
    if digest is None and ":" in last:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = DOCKER_HUB, name if "/" in name else f"library/{name}"
    if host == "docker.io":
        host = DOCKER_HUB
    return ImageReference(host, repository, digest or tag)


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(params))


def _token(
    client: httpx.Client,
    params: dict[str, str],
    image: ImageReference,
    credentials: RegistryCredentials | None,
) -> str:
    """A bearer token for pulling ``image`` from the realm the registry's challenge named."""
    realm = params.get("realm")
    if not realm:
        raise ImageBuildError(f"Registry {image.host} asked for a token but named no realm to get one from.")
    query = {"scope": params.get("scope") or f"repository:{image.repository}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    auth = (credentials.username, credentials.password) if credentials else None
    answer = client.get(realm, params=query, auth=auth)
    if answer.status_code in (401, 403):
        raise ImageBuildError(
            f"Registry {image.host}'s token service {realm} refused the credentials "
            f"(HTTP {answer.status_code}). "
            "Fix: check --registry-username and --registry-password (their ${VAR} values)."
        )
    answer.raise_for_status()
    body = answer.json()
    token = body.get("token") or body.get("access_token")
    if not token:
        raise ImageBuildError(f"Registry {image.host}'s token service {realm} answered without a token.")
    return str(token)


def registry_has_tag(reference: str, *, credentials: RegistryCredentials | None, insecure: bool) -> bool:
    """Whether the registry holds ``reference``, asked through its v2 API (a manifest ``HEAD``).

    A ``401`` challenge is answered as the registry asks: basic authentication with
    ``credentials``, or a bearer token from its token service (with ``credentials`` when given,
    anonymously otherwise). ``insecure``: the registry speaks plain HTTP.
    """
    image = parse_reference(reference)
    url = f"{'http' if insecure else 'https'}://{image.host}/v2/{image.repository}/manifests/{image.tag}"
    headers = {"Accept": _MANIFEST_TYPES}
    try:
        with httpx.Client(timeout=_REGISTRY_TIMEOUT_S, follow_redirects=True) as client:
            answer = client.head(url, headers=headers)
            if answer.status_code == 401:
                scheme, params = _challenge(answer.headers.get("www-authenticate", ""))
                if scheme == "bearer":
                    token = _token(client, params, image, credentials)
                    answer = client.head(url, headers={**headers, "Authorization": f"Bearer {token}"})
                elif scheme == "basic" and credentials is not None:
                    answer = client.head(
                        url, headers=headers, auth=(credentials.username, credentials.password)
                    )
    except httpx.HTTPError as exc:
        plain = (
            "" if insecure else " (for a registry that speaks plain HTTP, attach with --registry-insecure)"
        )
        raise ImageBuildError(
            f"Could not ask registry {image.host} for {reference}: {exc}. Fix: check the registry's "
            f"address and that this machine reaches it{plain}."
        ) from exc
    if answer.status_code == 200:
        return True
    if answer.status_code == 404:
        return False
    if answer.status_code in (401, 403):
        raise ImageBuildError(
            f"Registry {image.host} refused to say whether it has {reference} (HTTP {answer.status_code}). "
            "Fix: attach the target with --registry-username and --registry-password (or check their values)."
        )
    raise ImageBuildError(
        f"Registry {image.host} answered HTTP {answer.status_code} when asked for {reference}. Fix: check "
        "that the address names a registry (its API is under /v2/)."
    )


def image_repository(environment: Environment) -> str:
    """The environment's name made a valid repository name (lower case; letters, digits, ``._-``)."""
    return re.sub(r"[^a-z0-9._-]+", "-", environment.name.lower()).strip("-._") or "environment"


def environment_image_reference(registry: str, environment: Environment, base_image: str) -> str:
    """The image of ``environment`` built on ``base_image``, in ``registry`` (``HOST[/PREFIX]``).

    Tagged with the environment's content hash (the key the node cache builds under too) and a
    short hash of the base image: the same definition on another runtime image (a target's new
    ``--image``) is another image, built anew rather than an old one reused."""
    base = hashlib.sha256(base_image.encode()).hexdigest()[:12]
    repository = image_repository(environment)
    return f"{registry.rstrip('/')}/modelport-env-{repository}:{environment.content_hash}-{base}"
