"""Image mode: a service's environment as an image, built on this machine and pushed to the target's registry.

For clusters whose nodes cannot reach a package index (air-gapped, or a policy), the node cache
(:mod:`.envplacement`) cannot install anything. In image mode the deploying machine does the
installing instead, as Azure ML's image build did: the environment's build context
(:mod:`.build_context`) on top of the target's runtime image, built with the builder this machine
has and pushed to the target's registry, tagged with the environment's content hash. A registry
that already has the tag is not built for again (asked through its API), so only a changed
environment costs a build. Pods then run that image as it is, with no ``environment`` init
container, and pull it with the target's registry credentials (a ``kubernetes.io/dockerconfigjson``
Secret, their ``imagePullSecrets``).

The target's package index settings apply to the build (pip's own variables as build arguments):
the building machine reaches the index the cluster may not.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from modelport.compute.imagebuild import (
    Builder,
    ImageBuildError,
    OnLine,
    RegistryCredentials,
    build_image,
    detect_builder,
    docker_config_json,
    environment_image_reference,
    push_image,
    registry_has_tag,
    registry_host,
)
from modelport.compute.kubernetes.build_context import write_build_context
from modelport.compute.kubernetes.envplacement import (
    IMAGE_MODE,
    PACKAGE_INDEX_SECRET,
    REGISTRY_SECRET,
    cached_environment,
    expand,
    proxy_variables,
)
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import UserErrorException
from modelport.registry.environment import Environment
from modelport.service.spec import ServiceSpec


@dataclass(frozen=True)
class EnvironmentImage:
    """An environment's image in the target's registry: its reference, and whether it was built now."""

    reference: str
    built: bool  # False: the registry had it already
    seconds: float  # the build and push, when built


def registry_credentials(target: KubernetesTarget) -> RegistryCredentials | None:
    """The target's registry credentials with their ``${VAR}`` references resolved (None: none set)."""
    if target.registry_username is None or target.registry_password is None:
        return None
    return RegistryCredentials(
        expand(target.registry_username, "--registry-username", REGISTRY_SECRET),
        expand(target.registry_password, "--registry-password", REGISTRY_SECRET),
    )


def pull_secret_config(target: KubernetesTarget) -> str | None:
    """The ``.dockerconfigjson`` the pods pull the target's registry with (None: no credentials)."""
    credentials = registry_credentials(target)
    if credentials is None or target.registry is None:
        return None
    return docker_config_json(target.registry, credentials)


def index_build_args(target: KubernetesTarget, on_line: OnLine) -> dict[str, str]:
    """The target's package index settings as pip's variables, for the image build.

    Build arguments are recorded in the image's history, so an index URL with a password in it
    is said out loud: whoever can pull the image can read it.
    """
    args: dict[str, str] = {}
    if target.package_index_url:
        args["PIP_INDEX_URL"] = expand(target.package_index_url, "--index-url", PACKAGE_INDEX_SECRET)
    if target.extra_index_urls:
        args["PIP_EXTRA_INDEX_URL"] = " ".join(
            expand(url, "--extra-index-url", PACKAGE_INDEX_SECRET) for url in target.extra_index_urls
        )
    if target.trusted_hosts:
        args["PIP_TRUSTED_HOST"] = " ".join(
            expand(host, "--trusted-host", PACKAGE_INDEX_SECRET) for host in target.trusted_hosts
        )
    # The proxy variables are build arguments the builders predefine: they reach the build's steps
    # without an ARG line and stay out of the image's history.
    args |= proxy_variables(target.package_proxy, target.no_proxy, PACKAGE_INDEX_SECRET)
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if any(urlsplit(url).password for url in args.get(name, "").split()):
            on_line(
                f"Warning: {name} carries a password; build arguments are recorded in the image's history, "
                "so anyone who can pull the image can read it. Use an index reachable without one for builds."
            )
    return args


def _require_registry(target: KubernetesTarget, target_name: str) -> str:
    if target.registry is None:
        raise UserErrorException(
            f"Compute target {target_name!r} has no registry to push environment images to. Fix: detach it "
            "and attach it again with --registry HOST[:PORT][/PREFIX] (and --registry-username and "
            "--registry-password when the registry needs them)."
        )
    return target.registry


def ensure_environment_image(
    environment: Environment,
    target: KubernetesTarget,
    target_name: str,
    *,
    on_line: OnLine,
    force: bool = False,
    builder: str | None = None,
) -> EnvironmentImage:
    """The image of ``environment`` in the target's registry: found there, or built on the target's
    runtime image and pushed (``force``: built even when found). ``on_line`` gets every step and
    the builder's output, timed from the start."""
    registry = _require_registry(target, target_name)
    reference = environment_image_reference(registry, environment, target.image)
    credentials = registry_credentials(target)
    label = f"environment {environment.name!r} version {environment.version}"
    if not force and registry_has_tag(reference, credentials=credentials, insecure=target.registry_insecure):
        on_line(f"Registry {registry} already has {reference} ({label}); not building it again.")
        return EnvironmentImage(reference, built=False, seconds=0.0)
    chosen = detect_builder(builder)
    started = time.monotonic()

    def timed(line: str) -> None:
        on_line(f"[{time.monotonic() - started:6.1f} s] {line}")

    timed(f"Building {reference} ({label}) on {target.image} with {chosen.name} ({chosen.executable}).")
    with tempfile.TemporaryDirectory(prefix="modelport-image-") as folder:
        context = write_build_context(environment, Path(folder) / "context", base_image=target.image)
        for note in context.notes:
            timed(f"  {note}")
        assert context.directory is not None
        build_and_push(chosen, context.directory, reference, target, on_line=timed)
    return EnvironmentImage(reference, built=True, seconds=time.monotonic() - started)


def build_and_push(
    builder: Builder, context_dir: Path, reference: str, target: KubernetesTarget, *, on_line: OnLine
) -> None:
    """Build ``context_dir`` (``FROM`` the target's runtime image) as ``reference`` with the target's
    index settings, and push it to the target's registry with its credentials (environment images
    and ``Model.package`` images alike)."""
    registry = target.registry or registry_host(reference)
    same_registry = registry_host(target.image) == registry_host(registry)
    build_image(
        builder,
        context_dir,
        reference,
        build_args=index_build_args(target, on_line),
        on_line=on_line,
        pull_insecure=target.registry_insecure and same_registry,
    )
    on_line(f"Built {reference}; pushing it to {registry}.")
    credentials = registry_credentials(target)
    push_image(
        builder, reference, credentials=credentials, insecure=target.registry_insecure, on_line=on_line
    )
    on_line(f"Pushed {reference}.")


def image_environment(spec: ServiceSpec, target: KubernetesTarget, image: str) -> Environment | None:
    """The environment a service's pods could run as an image: in image mode, or on a node-cache
    target with a registry (where ``environment build-image`` may have pushed it). None: neither,
    no environment, a user-managed one, or one that names its own ``image``."""
    if spec.environment is None or (target.env_mode != IMAGE_MODE and target.registry is None):
        return None
    if cached_environment(spec, image_is_the_environments=image != target.image) is None:
        return None
    return Environment.from_dict(spec.environment.definition)


def prebuilt_environment_image(
    environment: Environment, target: KubernetesTarget, *, on_line: OnLine
) -> str | None:
    """Image mode per environment, on a node-cache target with a registry: the environment's image
    when ``environment build-image`` has pushed it there (pods run it, no node-cache build), else
    None (the node cache builds it). A registry that cannot be asked is said, and the node cache
    used: the target's mode is node-cache, so the registry is not needed to deploy."""
    if target.registry is None:
        return None
    reference = environment_image_reference(target.registry, environment, target.image)
    try:
        found = registry_has_tag(
            reference, credentials=registry_credentials(target), insecure=target.registry_insecure
        )
    except ImageBuildError as exc:
        on_line(
            f"Warning: could not ask {target.registry} for {reference} ({exc}); the node cache builds it."
        )
        return None
    if found:
        on_line(
            f"Environment {environment.name!r} version {environment.version} has its image {reference} "
            "(from environment build-image): pods run it, the node cache builds nothing."
        )
    return reference if found else None
