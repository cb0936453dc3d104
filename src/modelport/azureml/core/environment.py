"""``azureml.core.environment``: ``Environment`` (and ``CondaDependencies``, which it re-exported).

The facade's ``Environment`` is the registry's, plus Azure ML's ``build(workspace,
image_build_compute=...)``: the environment's image made in image mode (docs/environments.md,
"Image mode") for a Kubernetes target's registry. Every way of getting an environment
(``Environment.get``, ``list``, ``register``, ``clone``, the ``from_*`` constructors) returns this
class, so that ``Environment.get(ws, "env").build(ws, "aks")`` works as it did.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from modelport.errors import UserErrorException
from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import ContainerRegistry
from modelport.registry.environment import Environment as _Environment

if TYPE_CHECKING:
    from modelport.compute.kubernetes.envimage import EnvironmentImage
    from modelport.workspace import Workspace


class ImageBuildDetails:
    """What ``Environment.build`` returns (Azure ML's name): the build runs in the background;
    ``wait_for_completion(show_output=True)`` streams its log and raises if it failed."""

    def __init__(self, run: Any) -> None:
        self._lines: list[str] = []
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._image: EnvironmentImage | None = None
        self._thread = threading.Thread(
            target=self._run, args=(run,), daemon=True, name="modelport-image-build"
        )
        self._thread.start()

    def _run(self, run: Any) -> None:
        try:
            self._image = run(self._lines.append)
        except BaseException as exc:  # handed to whoever waits, as Azure ML's build status did
            self._error = exc
        finally:
            self._done.set()

    @property
    def status(self) -> str:
        """``Running``, ``Succeeded`` or ``Failed``."""
        if not self._done.is_set():
            return "Running"
        return "Failed" if self._error is not None else "Succeeded"

    @property
    def image(self) -> str | None:
        """The image's reference once the build succeeded (Azure ML: ``image_details['dockerImage']``)."""
        return self._image.reference if self._image is not None else None

    def get_log(self) -> str:
        """The build's output so far."""
        return "".join(f"{line}\n" for line in list(self._lines))

    def wait_for_completion(self, show_output: bool = False) -> None:
        """Wait until the build ends (``show_output``: print its output as it comes); raise its error."""
        shown = 0
        while True:
            finished = self._done.wait(0.2)
            if show_output:
                lines = list(self._lines)
                for line in lines[shown:]:
                    print(line, flush=True)
                shown = len(lines)
            if finished:
                break
        if self._error is not None:
            raise self._error


class Environment(_Environment):
    """The registry's ``Environment`` with Azure ML's ``build``."""

    def build(self, workspace: Workspace, image_build_compute: Any = None) -> ImageBuildDetails:
        """Build this registered environment's image for a Kubernetes target and push it to the
        target's registry (skipped when the registry has it). ``image_build_compute``: the target
        (its name, or the compute target object), attached with ``--registry``; the image is built
        on this machine, on that target's runtime image."""
        from modelport.compute.kubernetes.envimage import ensure_environment_image
        from modelport.compute.kubernetes.target import load_target

        name = getattr(image_build_compute, "name", image_build_compute)
        if not isinstance(name, str):
            raise UserErrorException(
                "Environment.build: image_build_compute names no compute target. Fix: pass the name of a "
                "Kubernetes target attached with --registry, e.g. env.build(ws, image_build_compute='aks')."
            )
        if self.version is None:
            raise UserErrorException(
                f"Environment {self.name!r} is not registered. Fix: env = env.register(workspace), "
                "then build it."
            )
        target = load_target(workspace, name)
        environment = _Environment.from_dict(self.to_dict())
        return ImageBuildDetails(
            lambda on_line: ensure_environment_image(environment, target, name, on_line=on_line)
        )

    @classmethod
    def _facade(cls, env: _Environment) -> Environment:
        found = cls.from_dict(env.to_dict())
        assert isinstance(found, Environment)
        return found

    def register(self, workspace: Workspace) -> Environment:
        """As the registry's ``register``, returning this class."""
        return self._facade(super().register(workspace))

    def clone(self, new_name: str) -> Environment:
        """As the registry's ``clone``, returning this class."""
        return self._facade(super().clone(new_name))

    @staticmethod
    def get(
        workspace: Workspace, name: str, version: str | int | None = None, label: str | None = None
    ) -> Environment:
        """As the registry's ``get``, returning this class."""
        return Environment._facade(_Environment.get(workspace, name, version, label))

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:  # type: ignore[override]
        """As the registry's ``list``, returning this class."""
        return {name: Environment._facade(env) for name, env in _Environment.list(workspace).items()}


__all__ = ["CondaDependencies", "ContainerRegistry", "Environment", "ImageBuildDetails"]
