"""``Model.package``: models, their source and their environment as a serving image's build context.

Azure ML v1 packaged models two ways (docs/models.md, "Packaging a model"): an image built and
pushed to the workspace's registry, or (``generate_dockerfile=True``) the Docker build context of
that image. The context is the environment's build context
(:mod:`modelport.compute.kubernetes.build_context`) with the models laid out under
``azureml-app/azureml-models/<name>/<version>/`` and the source beside them, as a replica's app
root (:mod:`modelport.service.replica_contract`), and a ``CMD`` that runs ``modelport serve`` on
them: ``docker build`` turns it into an image that serves the models with ``docker run``.

Everything is checked when the package is made (models, environment, source files readable);
the files are read when :meth:`ModelPackage.save` writes the context, into a staging folder that
becomes the destination only once complete.

``generate_dockerfile=False`` (Azure ML's default) builds that context into an image on this
machine and pushes it, as image mode builds environments (:mod:`modelport.compute.imagebuild`,
:func:`modelport.compute.kubernetes.envimage.build_and_push`): ``FROM`` a Kubernetes target's
runtime image, with its package index settings, to its registry (Azure ML's workspace registry).
A failed build is the package's state ``Failed``, with the builder's output in its log.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.compute import targets
from modelport.compute.imagebuild import ImageBuildError, detect_builder, registry_host
from modelport.compute.kubernetes.build_context import (
    APP_DIR,
    BuildContext,
    ServingApp,
    render_build_context,
    write_build_context,
)
from modelport.compute.kubernetes.envimage import build_and_push, registry_credentials
from modelport.compute.kubernetes.target import COMPUTE_TYPE, KubernetesTarget, load_target
from modelport.config.inference import InferenceConfig
from modelport.errors import UserErrorException, WebserviceException
from modelport.names import check_image_label, check_image_name
from modelport.registry.environment import ContainerRegistry, Environment
from modelport.registry.model import Model
from modelport.service.deploy import collect_source, no_code_refusal, resolve_models
from modelport.service.replica_contract import model_path
from modelport.workspace.filesets import LocalFile

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Azure ML's message, matched by callers.
NEEDS_ENVIRONMENT = "Error, model packaging requires an InferenceConfig containing an Environment object."
SUCCEEDED = "Succeeded"
FAILED = "Failed"
DEFAULT_LABEL = "latest"


def default_image_name(models: Sequence[Any]) -> str:
    """The image name when none is given: the first model's name as an image repository name."""
    name = re.sub(r"[^a-z0-9]+", "-", models[0].name.lower()).strip("-") if models else ""
    return name or "package"


def image_target(workspace: Workspace, name: str | None) -> tuple[str, KubernetesTarget]:
    """The Kubernetes target whose registry a package's image goes to: ``name``, else the
    workspace's only target attached with a registry."""
    if name is None:
        with_registry = [
            record.name
            for record in targets.list_targets(workspace)
            if record.compute_type == COMPUTE_TYPE and record.definition.get("registry")
        ]
        if len(with_registry) != 1:
            found = f"targets {', '.join(with_registry)} have one" if with_registry else "no target has one"
            raise UserErrorException(
                "Model.package builds an image and pushes it to a Kubernetes target's registry, and "
                f"{found}. "
                "Fix: name the target (compute_target='NAME', --ct NAME), attach one with --registry "
                "HOST[:PORT][/PREFIX], or write the build context instead (generate_dockerfile=True, "
                "--dockerfile-only -o DIR)."
            )
        name = with_registry[0]
    target = load_target(workspace, name)
    if target.registry is None:
        raise UserErrorException(
            f"Compute target {name!r} has no registry to push the package's image to. Fix: detach it and "
            "attach it again with --registry HOST[:PORT][/PREFIX], or write the build context instead "
            "(generate_dockerfile=True, --dockerfile-only -o DIR)."
        )
    return name, target


def package(
    workspace: Workspace,
    models: Sequence[Model | str],
    inference_config: InferenceConfig | None = None,
    generate_dockerfile: bool = False,
    image_name: str | None = None,
    image_label: str | None = None,
    *,
    compute_target: str | None = None,
) -> ModelPackage:
    """Package ``models`` with the inference config's source and environment (Azure ML's signature).

    With ``generate_dockerfile=True``, ``save(DIR)`` writes the build context; else the image is
    built here and pushed to the registry of ``compute_target`` (default: the workspace's only
    Kubernetes target with a registry) before this returns, and ``location`` names it (state
    ``Failed`` and the builder's output in ``get_logs()`` when it could not be built).
    ``image_name`` and ``image_label`` name the image (default: the first model's name, ``latest``).
    """
    refs = resolve_models(workspace, models)
    if inference_config is None:
        raise no_code_refusal(refs, workspace)
    environment = inference_config.environment
    if environment is None:
        raise WebserviceException(NEEDS_ENVIRONMENT)
    name = check_image_name(image_name if image_name is not None else default_image_name(refs))
    label = check_image_label(image_label if image_label is not None else DEFAULT_LABEL)
    if generate_dockerfile and compute_target is not None:
        raise UserErrorException(
            f"compute_target {compute_target!r} names the registry an image is pushed to, and "
            "generate_dockerfile=True pushes nothing. Fix: leave compute_target out, or build the image "
            "(generate_dockerfile=False)."
        )
    source, files = collect_source(inference_config)
    if generate_dockerfile:
        app = ServingApp(models=refs, source=source, image=f"{name}:{label}")
        context = render_build_context(environment, app=app)
        return ModelPackage(workspace, environment, context, app, files)
    target_name, target = image_target(workspace, compute_target)
    app = ServingApp(models=refs, source=source, image=f"{target.registry}/{name}:{label}")
    context = render_build_context(environment, target.image, app=app)
    made = ModelPackage(workspace, environment, context, app, files, target=target)
    made._build_and_push(target_name, target)
    return made


class ModelPackage:
    """Azure ML's ``ModelPackage``: what ``Model.package`` made, a Docker build context or a pushed image."""

    def __init__(
        self,
        workspace: Workspace,
        environment: Environment,
        context: BuildContext,
        app: ServingApp,
        source_files: Sequence[LocalFile],
        *,
        target: KubernetesTarget | None = None,
    ) -> None:
        self.workspace = workspace
        # Image mode pushes to a target's registry; a build context has no target.
        self.generate_dockerfile = target is None
        self.state = SUCCEEDED
        # The pushed image's reference; for a build context, the folder of the last save() (Azure
        # ML's was a download URL of the context).
        self.location: str | None = None
        self.error: dict[str, Any] | None = None
        self.package_build_log_uri: str | None = None
        self._environment = environment
        self._context = context
        self._app = app
        self._source_files = tuple(source_files)
        self._target = target
        self._log = [
            f"Packaging {', '.join(model.id for model in self._app.models)} with entry script "
            f"{self._app.source.entry_script} in environment {environment.name!r} "
            f"(content hash {context.content_hash[:12]}) on {context.base}.",
            *context.notes,
        ]
        if target is None:
            self._log.append(
                f"Build context ready: save(output_directory) writes it; "
                f"`docker build -t {self._app.image} DIR` builds the image."
            )

    def __repr__(self) -> str:
        return (
            f"ModelPackage(generate_dockerfile={self.generate_dockerfile}, state={self.state!r}, "
            f"location={self.location!r})"
        )

    def _build_and_push(self, target_name: str, target: KubernetesTarget) -> None:
        """Image mode: build the context with this machine's builder and push it to the target's
        registry; ``state`` becomes ``Failed`` (with the builder's output logged) if that fails."""
        started = time.monotonic()

        def timed(line: str) -> None:
            self._log.append(f"[{time.monotonic() - started:6.1f} s] {line}")

        try:
            builder = detect_builder()
            timed(
                f"Building {self.image} on {target.image} with {builder.name} ({builder.executable}) "
                f"for compute target {target_name!r}."
            )
            with tempfile.TemporaryDirectory(prefix="modelport-package-") as folder:
                context_dir = Path(folder) / "context"
                self._assemble(context_dir)
                build_and_push(builder, context_dir, self.image, target, on_line=timed)
        except ImageBuildError as exc:
            self.state = FAILED
            self.error = {"code": exc.code, "message": str(exc)}
            timed(str(exc))
            return
        self.location = self.image

    @property
    def image(self) -> str:
        """The image reference (``name:label``) the context's README and build command use."""
        return self._app.image

    def wait_for_creation(self, show_output: bool = False) -> None:
        """Return once the package is made (it is when ``Model.package`` returns); print its log
        with ``show_output``. Raises ``WebserviceException`` if it did not succeed."""
        if show_output:
            print(self.get_logs(), end="", flush=True)
        if self.state != SUCCEEDED:
            raise WebserviceException(
                "Package creation reached non-successful terminal state.\n"
                f"State: {self.state}\nError:\n{self.error}"
            )

    def update_creation_state(self) -> None:
        """Refresh ``state``: a build context is complete when made, so there is nothing to fetch."""

    def get_logs(self, decode: bool = True, offset: int = 0) -> Any:
        """The package's log from character ``offset``: the environment's translation notes and
        what to do next; bytes when ``decode`` is false."""
        text = "".join(f"{line}\n" for line in self._log)[offset:]
        return text if decode else text.encode("utf-8")

    def get_container_registry(self) -> ContainerRegistry:
        """Image mode: the registry the image was pushed to, with the target's credentials (log in
        there to pull it). A build context: the registry its base image comes from, with the
        environment's credentials for it (``docker.base_image_registry``): log in there to build."""
        if self._target is not None and self._target.registry is not None:
            credentials = registry_credentials(self._target)
            return ContainerRegistry(
                registry_host(self._target.registry),
                credentials.username if credentials else None,
                credentials.password if credentials else None,
            )
        own = self._environment.docker.base_image_registry
        if own.address:
            return ContainerRegistry(own.address, own.username, own.password)
        if self._context.base == "docker.base_dockerfile":
            return ContainerRegistry()
        return ContainerRegistry(address=registry_host(self._context.base))

    def pull(self) -> None:
        """Azure ML pulled the package's image into the local Docker; modelport names the command."""
        if self.location is None or self.generate_dockerfile:
            raise WebserviceException(
                "Package does not contain an image: it was created with generate_dockerfile=True or its "
                "build failed (get_logs() says why). Fix: package.save(DIR), then "
                "`docker build -t IMAGE DIR`."
            )
        raise WebserviceException(
            f"Package.pull() is not run by modelport. Fix: `docker pull {self.location}` (or podman/buildah "
            "pull), after logging in to get_container_registry()."
        )

    def save(self, output_directory: str | os.PathLike[str]) -> None:
        """Write the build context into ``output_directory`` (a new or empty folder): Dockerfile,
        requirements.txt, README.md, and the models and source under ``azureml-app/``.

        The context is assembled in a staging folder beside it and moved into place when complete,
        so a failure (a model deleted since, a full disk) leaves no partial context behind.
        """
        if not self.generate_dockerfile:
            raise WebserviceException(
                f"save() writes a build context; this package was built into an image ({self.location}). "
                "Fix: Model.package(..., generate_dockerfile=True) for a build context."
            )
        dest = Path(output_directory)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise WebserviceException(
                f"Cannot save the package to {str(dest)!r}: it exists and is not an empty folder. "
                "Fix: name a new or empty folder."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.parent / f".{dest.name}.modelport-{uuid.uuid4().hex[:12]}"
        try:
            self._assemble(staging)
            if dest.exists():
                dest.rmdir()
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.location = str(dest.resolve())

    def _assemble(self, folder: Path) -> None:
        """Write the build context into the new ``folder``: the Dockerfile and requirements, then
        the models and the source under ``azureml-app/``."""
        base = self._target.image if self._target is not None else None
        write_build_context(self._environment, folder, base, app=self._app)
        app_root = folder / APP_DIR
        for ref in self._app.models:
            Model(self.workspace, id=ref.id).download(app_root / model_path(ref))
        for source in self._source_files:
            copy = app_root / source.stored
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.local, copy)
            copy.chmod(source.mode & 0o777)

    def serialize(self) -> dict[str, Any]:
        """Azure ML's dict form: ``generateDockerfile``, ``state``, ``location``."""
        return {
            "generateDockerfile": self.generate_dockerfile,
            "state": self.state,
            "location": self.location,
        }
