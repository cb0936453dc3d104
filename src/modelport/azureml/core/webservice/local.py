"""``azureml.core.webservice.local``: ``LocalWebservice``, served at ``http://localhost:<port>/score``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from modelport.azureml.core.webservice.webservice import Webservice, register_type
from modelport.config import InferenceConfig
from modelport.config.deployment import LocalDeploymentConfig
from modelport.errors import WebserviceException
from modelport.service import states
from modelport.service import store as service_store
from modelport.service.webservice import Webservice as _Webservice

# Where LocalWebservice.reload() finds the entry script and source directory it re-reads.
_SOURCE_SETTING = "azureml.local_source.{name}"
LOCAL_READY_DEADLINE_S = 30.0
POLL_S = 0.1
# How long reload() and run() wait for a rollout in progress to serve (a reload builds nothing).
TRANSITION_DEADLINE_S = 300.0


class LocalWebserviceDeploymentConfiguration(LocalDeploymentConfig):
    """What ``LocalWebservice.deploy_configuration`` returns: served at ``http://localhost:<port>/score``."""


def remember_source(workspace: Any, name: str, config: InferenceConfig) -> None:
    """Keep where ``name``'s entry script and source directory are, for ``reload()`` in any session."""
    entry = config.entry_script or ""
    if not config.source_directory:
        entry = str(Path(entry).resolve())
    service_store.set_setting(
        workspace,
        _SOURCE_SETTING.format(name=name),
        {"entry_script": entry, "source_directory": config.source_directory},
    )


_LOCAL_STATES = {
    states.TRANSITIONING: "deploying",
    states.HEALTHY: "running",
    states.FAILED: "failed",
    states.UNSCHEDULABLE: "failed",
    states.DELETING: "deleted",
}


class LocalWebservice:
    """Azure ML's ``LocalWebservice``: one service served at ``http://localhost:<port>/score``, no auth.

    Runs on the local target (processes, not Docker); the workspace's local agent listens on the
    port. States are Azure ML's lower-case local ones.
    """

    def __init__(self, workspace: Any, name: str, must_exist: bool = True) -> None:
        self._service = _Webservice(workspace, name)

    @classmethod
    def _wrap(cls, service: _Webservice) -> LocalWebservice:
        local = cls.__new__(cls)
        local._service = service
        return local

    @staticmethod
    def deploy_configuration(port: int | None = None) -> LocalWebserviceDeploymentConfiguration:
        """``port``: an int in 1..65535 (``None``: a free port chosen at deploy time)."""
        return LocalWebserviceDeploymentConfiguration(port=port)

    def __getattr__(self, attribute: str) -> Any:
        # Everything Azure ML's LocalWebservice shares with other services (name, models, tags,
        # environment, error, get_logs, serialize's base) comes from the service itself.
        if attribute == "_service":  # not set yet: no recursion through __getattr__
            raise AttributeError(attribute)
        return getattr(self._service, attribute)

    @property
    def port(self) -> int:
        """The port the service is served on."""
        return int(self._service.deployment_config.port)

    @property
    def scoring_uri(self) -> str:
        """``http://localhost:<port>/score``."""
        return f"http://localhost:{self.port}/score"

    @property
    def swagger_uri(self) -> str:
        """``http://localhost:<port>/swagger.json``."""
        return f"http://localhost:{self.port}/swagger.json"

    @property
    def state(self) -> str:
        """``deploying``, ``running``, ``failed``, ``deleted`` or ``unknown``."""
        return _LOCAL_STATES.get(self._service.state, "unknown")

    @property
    def compute_type(self) -> str:
        """``Local``."""
        return "Local"

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        """Wait until the service answers on its port (raises with the error object if it fails)."""
        self._service.wait_for_deployment(show_output=show_output, timeout_sec=timeout_sec)
        deadline = time.monotonic() + LOCAL_READY_DEADLINE_S
        while True:
            problem = self._service.observed.get("portError")
            if problem:
                raise WebserviceException(f"Local webservice {self.name} cannot listen: {problem}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise WebserviceException(
                    f"Local webservice {self.name} is Healthy but nothing answers on port {self.port} after "
                    f"{LOCAL_READY_DEADLINE_S:.0f} s. Check `modelport local logs`."
                )
            time.sleep(POLL_S)
            self._service.update_deployment_state()
        if show_output:
            print(f"Local webservice is running at http://localhost:{self.port}", flush=True)

    def run(self, input_data: Any) -> Any:
        """POST ``input_data`` to ``http://localhost:<port>/score``; the parsed JSON answer.

        While the service is deploying (after ``update`` or ``reload``) it first waits until the new
        generation serves, at most :data:`TRANSITION_DEADLINE_S`.
        """
        self._service.check_machine("call")  # the port is on that machine's loopback
        self._service.update_deployment_state()
        if self._service.state == states.TRANSITIONING:
            self.wait_for_deployment(timeout_sec=TRANSITION_DEADLINE_S)
        body = input_data if isinstance(input_data, str | bytes) else json.dumps(input_data)
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/score",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=None,
        )
        if response.status_code != 200:
            raise WebserviceException(
                f"Error: Scoring was unsuccessful.\nResponse Code: {response.status_code}\n"
                f"Content: {response.content!r}",
                status_code=response.status_code,
            )
        return response.json()

    def reload(self, wait: bool = False) -> None:
        """Re-read the entry script and source directory; models, environment and settings stay.

        Rolls out a new generation with a fresh snapshot of the source (old replicas serve until
        the new ones are ready; nothing is rebuilt) and returns once it serves, as Azure ML's
        reload returned once the container was recreated: the next ``run()`` answers with the
        edited script. ``wait=True`` also prints where the service runs.
        """
        source = service_store.get_setting(self._service.workspace, _SOURCE_SETTING.format(name=self.name))
        if not source:
            raise WebserviceException(
                f"Local webservice {self.name} was not deployed through "
                "LocalWebservice.deploy_configuration, so its source directory is not known. Fix: "
                "update(inference_config=...)."
            )
        config = InferenceConfig(
            source["entry_script"],
            source_directory=source["source_directory"],
            environment=self._service.environment,
        )
        self._service.update(inference_config=config)
        self.wait_for_deployment(show_output=wait, timeout_sec=TRANSITION_DEADLINE_S)

    def update(
        self,
        models: list[Any] | None = None,
        image_config: Any = None,
        deployment_config: LocalDeploymentConfig | None = None,
        wait: bool = False,
        inference_config: InferenceConfig | None = None,
    ) -> None:
        """New models and/or a new inference config (a new generation). The port cannot change in place."""
        if deployment_config is not None and deployment_config.port not in (None, self.port):
            raise WebserviceException(
                f"Local webservice {self.name} listens on port {self.port}; changing it needs a new "
                "deployment. Fix: Model.deploy(..., overwrite=True) with "
                "LocalWebservice.deploy_configuration(port=...)."
            )
        if image_config is not None:
            raise WebserviceException("image_config is not supported: modelport builds no images.")
        if models is None and inference_config is None:
            return
        self._service.update(models=models, inference_config=inference_config)
        if inference_config is not None:
            remember_source(self._service.workspace, self.name, inference_config)
        if wait:
            self.wait_for_deployment()

    def delete(
        self, delete_cache: bool = True, delete_image: bool = False, delete_volume: bool = True
    ) -> None:
        """Stop and remove the service (the port is released)."""
        self._service.delete()
        service_store.set_setting(self._service.workspace, _SOURCE_SETTING.format(name=self.name), None)

    def serialize(self) -> dict[str, Any]:
        """Azure ML's local form: the service's dict with ``port``, local URIs and the lower-case state."""
        return {
            **self._service.serialize(),
            "state": self.state,
            "port": self.port,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
        }

    @staticmethod
    def list(
        workspace: Any, model_name: str | None = None, model_id: str | None = None, all: bool | None = None
    ) -> list[LocalWebservice]:
        """Local webservices of the workspace."""
        return Webservice.list(workspace, compute_type="LOCAL", model_name=model_name, model_id=model_id)

    def get_keys(self) -> Any:
        """Local webservices have no auth (as in Azure ML)."""
        raise NotImplementedError("Local web services do not support authentication keys.")

    regen_key = get_keys
    get_token = get_keys
    get_access_token = get_keys

    def __repr__(self) -> str:
        return f"LocalWebservice(workspace={self._service.workspace!r}, name={self.name}, port={self.port})"


register_type("LOCAL", LocalWebservice._wrap)

__all__ = ["LocalWebservice", "LocalWebserviceDeploymentConfiguration"]
