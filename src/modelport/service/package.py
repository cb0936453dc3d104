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
becomes the destination only once complete. Building and pushing the image
(``generate_dockerfile=False``) waits for the image builder (issue 13, image mode) and is refused
with the fix until then.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.compute.kubernetes.build_context import (
    APP_DIR,
    BuildContext,
    ServingApp,
    render_build_context,
    write_build_context,
)
from modelport.config.inference import InferenceConfig
from modelport.errors import WebserviceException
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
IMAGE_MODE_REFUSED = (
    "Model.package with generate_dockerfile=False builds the image and pushes it to a registry, which "
    "modelport cannot do yet (it needs the image builder of issue 13's image mode). Fix: "
    "Model.package(..., generate_dockerfile=True), package.save(DIR), then `docker build -t IMAGE DIR` and "
    "`docker push IMAGE`; on the command line, `modelport model package ... --dockerfile-only -o DIR`."
)
SUCCEEDED = "Succeeded"
DEFAULT_LABEL = "latest"
# Where an image reference without a registry host is pulled from.
DEFAULT_REGISTRY = "docker.io"


def default_image_name(models: Sequence[Any]) -> str:
    """The image name when none is given: the first model's name as an image repository name."""
    name = re.sub(r"[^a-z0-9]+", "-", models[0].name.lower()).strip("-") if models else ""
    return name or "package"


def package(
    workspace: Workspace,
    models: Sequence[Model | str],
    inference_config: InferenceConfig | None = None,
    generate_dockerfile: bool = False,
    image_name: str | None = None,
    image_label: str | None = None,
) -> ModelPackage:
    """Package ``models`` with the inference config's source and environment (Azure ML's signature).

    Returns a :class:`ModelPackage` in state ``Succeeded``: with ``generate_dockerfile=True``,
    ``save(DIR)`` writes the build context. ``image_name`` and ``image_label`` name the image the
    context's README and the printed build command tag (default: the first model's name,
    ``latest``).
    """
    refs = resolve_models(workspace, models)
    if inference_config is None:
        raise no_code_refusal(refs, workspace)
    environment = inference_config.environment
    if environment is None:
        raise WebserviceException(NEEDS_ENVIRONMENT)
    name = check_image_name(image_name if image_name is not None else default_image_name(refs))
    label = check_image_label(image_label if image_label is not None else DEFAULT_LABEL)
    if not generate_dockerfile:
        raise WebserviceException(IMAGE_MODE_REFUSED)
    source, files = collect_source(inference_config)
    app = ServingApp(models=refs, source=source, image=f"{name}:{label}")
    context = render_build_context(environment, app=app)
    return ModelPackage(workspace, environment, context, app, files)


def _registry_host(reference: str) -> str:
    """The registry an image reference is pulled from (Docker's rule for its first component)."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return DEFAULT_REGISTRY


class ModelPackage:
    """Azure ML's ``ModelPackage``: what ``Model.package`` made (here: a Docker build context)."""

    def __init__(
        self,
        workspace: Workspace,
        environment: Environment,
        context: BuildContext,
        app: ServingApp,
        source_files: Sequence[LocalFile],
    ) -> None:
        self.workspace = workspace
        self.generate_dockerfile = True
        self.state = SUCCEEDED
        # The folder of the last save(); Azure ML's was a download URL of the context.
        self.location: str | None = None
        self.error: dict[str, Any] | None = None
        self.package_build_log_uri: str | None = None
        self._environment = environment
        self._context = context
        self._app = app
        self._source_files = tuple(source_files)
        self._log = [
            f"Packaging {', '.join(model.id for model in self._app.models)} with entry script "
            f"{self._app.source.entry_script} in environment {environment.name!r} "
            f"(content hash {context.content_hash[:12]}) on {context.base}.",
            *context.notes,
            f"Build context ready: save(output_directory) writes it; "
            f"`docker build -t {self._app.image} DIR` builds the image.",
        ]

    def __repr__(self) -> str:
        return f"ModelPackage(generate_dockerfile=True, state={self.state!r}, location={self.location!r})"

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
        """The registry the Dockerfile's base image comes from, with the environment's credentials
        for it (``docker.base_image_registry``) when it has them: log in there to build."""
        own = self._environment.docker.base_image_registry
        if own.address:
            return ContainerRegistry(own.address, own.username, own.password)
        if self._context.base == "docker.base_dockerfile":
            return ContainerRegistry()
        return ContainerRegistry(address=_registry_host(self._context.base))

    def pull(self) -> None:
        """Azure ML pulled the package's image; a build context has none."""
        raise WebserviceException(
            "Package does not contain an image: it was created with generate_dockerfile=True. "
            "Fix: package.save(DIR), then `docker build -t IMAGE DIR`."
        )

    def save(self, output_directory: str | os.PathLike[str]) -> None:
        """Write the build context into ``output_directory`` (a new or empty folder): Dockerfile,
        requirements.txt, README.md, and the models and source under ``azureml-app/``.

        The context is assembled in a staging folder beside it and moved into place when complete,
        so a failure (a model deleted since, a full disk) leaves no partial context behind.
        """
        dest = Path(output_directory)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise WebserviceException(
                f"Cannot save the package to {str(dest)!r}: it exists and is not an empty folder. "
                "Fix: name a new or empty folder."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.parent / f".{dest.name}.modelport-{uuid.uuid4().hex[:12]}"
        try:
            write_build_context(self._environment, staging, app=self._app)
            app_root = staging / APP_DIR
            for ref in self._app.models:
                Model(self.workspace, id=ref.id).download(app_root / model_path(ref))
            for source in self._source_files:
                target = app_root / source.stored
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.local, target)
                target.chmod(source.mode & 0o777)
            if dest.exists():
                dest.rmdir()
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.location = str(dest.resolve())

    def serialize(self) -> dict[str, Any]:
        """Azure ML's dict form: ``generateDockerfile``, ``state``, ``location``."""
        return {
            "generateDockerfile": self.generate_dockerfile,
            "state": self.state,
            "location": self.location,
        }
