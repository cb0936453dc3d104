"""``Webservice``: a deployed service as Azure ML v1's SDK showed it (docs/services.md)."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from modelport.errors import WebserviceException
from modelport.registry import tags as tag_rules
from modelport.service import keys, listing, serialization, states, wait
from modelport.service import store as service_store
from modelport.service.driver import TargetDriver, driver_for
from modelport.service.machine import require_here
from modelport.service.spec import ServiceSpec

if TYPE_CHECKING:
    from modelport.frontend.auth import Token
    from modelport.workspace import Workspace

_UNREAD = object()  # the front end's address, not read since the last refresh


class Webservice:
    """A deployed service: its configuration, state, keys, logs, and the operations on it."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        record = service_store.read_service(workspace, name)
        if record is None:
            raise service_store.not_found(name)
        self.workspace = workspace
        self.name = name
        self._pending_generation: int | None = None
        self._driver: TargetDriver | None = None
        self._load(record, observe=False)

    @classmethod
    def _from_record(
        cls, workspace: Workspace, record: service_store.ServiceRecord, driver: TargetDriver
    ) -> Webservice:
        """The service ``record`` describes, on ``driver`` (shared by the services of its target)."""
        service = cls.__new__(cls)
        service.workspace = workspace
        service.name = record.spec.name
        service._pending_generation = None
        service._driver = driver
        service._load(record, observe=False)
        return service

    def _load(self, record: service_store.ServiceRecord, *, observe: bool) -> None:
        """Take ``record`` and the status last recorded; ``observe``: let the target reconcile and
        record what it sees first (the only reads that may write: update_deployment_state, waits)."""
        self._record = record
        self._spec: ServiceSpec = record.spec
        if self._driver is None:  # a service never changes target; the driver keeps its connection
            self._driver = driver_for(record.spec.compute_type, record.spec.compute_target)
        if observe:
            self._target_problem = self._driver.observe(self.workspace, record)
        else:
            self._target_problem = self._driver.target_problem(self.workspace)
        self._status = service_store.read_status(self.workspace, self.name)
        self._frontend_base: str | object | None = _UNREAD

    @property
    def driver(self) -> TargetDriver:
        """The driver of the service's compute target."""
        assert self._driver is not None  # set by _load, which every constructor runs
        return self._driver

    def update_deployment_state(self) -> None:
        """Observe the service on its target and refresh every attribute (keeps a pending operation).

        The target moves the service one step towards its stored generation first (on Kubernetes,
        an apply that failed is retried here); constructing a ``Webservice`` or listing services
        only reads what was last recorded.
        """
        record = service_store.read_service(self.workspace, self.name)
        if record is None:
            raise service_store.not_found(self.name)
        self._load(record, observe=True)

    # ------------------------------------------------------------------ attributes
    @property
    def compute_type(self) -> str:
        """``Local`` or ``Kubernetes``."""
        return self._spec.compute_type.capitalize()

    @property
    def compute_name(self) -> str:
        """The compute target the service runs on."""
        return self._spec.compute_target

    @property
    def generation(self) -> int:
        """How many times the service was deployed or updated."""
        return self._record.generation

    @property
    def state(self) -> str:
        """``Transitioning``, ``Healthy``, ``Unhealthy``, ``Unschedulable``, ``Failed`` or ``Deleting``."""
        if self._record.deleting:
            return states.DELETING
        if self._target_problem is not None:
            return states.UNHEALTHY
        status = self._status
        if status is None or status.observed_generation < self._record.generation:
            return states.TRANSITIONING
        return status.state

    @property
    def error(self) -> dict[str, Any] | None:
        """The error object ``{code, statusCode, message, details[]}`` of the current state, if any."""
        if self._target_problem is not None:
            return self._target_problem.to_dict()
        status = self._status
        if status is None or status.error is None or status.observed_generation < self._record.generation:
            return None
        return status.error.to_dict()

    @property
    def scoring_uri(self) -> str | None:
        """``http://127.0.0.1:<port>/api/v1/service/<name>/score`` (known once the target has started)."""
        if self._frontend_base is _UNREAD:  # read once per refresh: a cluster target asks its API
            self._frontend_base = self.driver.endpoint(self.workspace, self._record)
        base = self._frontend_base
        return f"{base}/api/v1/service/{self.name}/score" if base else None

    @property
    def machine(self) -> str | None:
        """Where a local service runs, ``<host> (<machine id>)``; ``None`` for other targets."""
        record = self._record
        return f"{record.machine_name} ({record.machine_id})" if record.machine_id else None

    def check_machine(self, operation: str) -> None:
        """Refuse ``operation`` on another machine's local service: its agent, port and logs are there."""
        require_here(self.name, self._record.machine_id, self._record.machine_name, operation)

    @property
    def swagger_uri(self) -> str | None:
        """The scoring URI with its last segment replaced by ``swagger.json``."""
        uri = self.scoring_uri
        return uri.rsplit("/", 1)[0] + "/swagger.json" if uri else None

    @property
    def models(self) -> list[Any]:
        """The served models (``Model`` objects)."""
        from modelport.registry.model import Model

        return [Model(self.workspace, id=m.id) for m in self._spec.models]

    @property
    def environment(self) -> Any:
        """The environment replicas run in (``None``: the workspace's own Python)."""
        from modelport.registry.environment import Environment

        env = self._spec.environment
        return Environment.from_dict(env.definition) if env else None

    @property
    def tags(self) -> dict[str, str]:
        """Tags (``update(tags=...)`` replaces them)."""
        return dict(self._spec.tags)

    @property
    def properties(self) -> dict[str, str]:
        """Properties (add-only)."""
        return dict(self._spec.properties)

    @property
    def description(self) -> str | None:
        """Free-text description."""
        return self._spec.description

    @property
    def created_time(self) -> datetime:
        """When the service was first deployed."""
        return self._record.created_time

    @property
    def updated_time(self) -> datetime:
        """When the desired state last changed."""
        return self._record.updated_time

    @property
    def auth_enabled(self) -> bool:
        """Key auth."""
        return self._spec.auth_mode == "key"

    @property
    def token_auth_enabled(self) -> bool:
        """Token auth."""
        return self._spec.auth_mode == "token"

    @property
    def deployment_config(self) -> Any:
        """The effective deployment configuration (every default applied)."""
        return self._spec.deployment

    @property
    def num_replicas(self) -> int | None:
        """Fixed replica count (``None`` while autoscaling)."""
        return self._spec.deployment.num_replicas

    @property
    def scoring_timeout_ms(self) -> int:
        """Time limit of one request at the front end."""
        return self._spec.deployment.scoring_timeout_ms

    @property
    def max_concurrent_requests_per_container(self) -> int:
        """At most this many requests in flight per replica."""
        return self._spec.deployment.replica_max_concurrent_requests

    @property
    def max_request_wait_time(self) -> int:
        """How long a request may wait in the queue (ms)."""
        return self._spec.deployment.max_request_wait_time

    @property
    def observed(self) -> dict[str, Any]:
        """The target's latest report (an ``Observation``'s detail): replicas, counts, and the
        target's own facts (the last autoscaling decision; the rollout and events on a cluster)."""
        return dict(self._status.detail) if self._status else {}

    def __repr__(self) -> str:
        return f"Webservice(workspace={self.workspace!r}, name={self.name}, state={self.state})"

    # ------------------------------------------------------------------ waiting
    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        """Follow the last deploy/update until the service is Healthy, or raise with the error object.

        Always ends: at a terminal state (Healthy, Failed, DeploymentTimedOut), or after
        ``timeout_sec`` (default ``wait.DEFAULT_WAIT_TIMEOUT_S``, 30 minutes) with the current
        state; the deployment itself continues. With ``show_output`` the target's progress
        (environment build, replicas starting) is printed as it happens.
        """
        self.check_machine("wait for")
        self.update_deployment_state()
        if self._target_problem is not None:  # e.g. no local agent: hand the service to the target again
            self.driver.submit(self.workspace, self.name)
        if show_output:
            print(f"Tip: you can follow the service with `modelport service show -n {self.name}`", flush=True)
        generation = self._pending_generation or self._record.generation
        wait.follow_deployment(self, generation, show_output, timeout_sec)
        self._pending_generation = None
        if show_output:
            print(
                f'{self.compute_type} service creation operation finished, operation "Succeeded"', flush=True
            )

    # ------------------------------------------------------------------ using
    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        """The replicas' output (``init=True``: the preparation log: environment build, model download)."""
        self.check_machine("read the logs of")
        return self.driver.logs(self.workspace, self.name, self._record.generation, num_lines, init)

    def get_events(
        self, kinds: Sequence[str] | None = None, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The service's history, oldest first: operations, state changes, replica restarts and
        kills, autoscale decisions (``kinds``: only these, e.g. ``["autoscale"]``; ``since``: at or
        after this time), from the workspace and, on a cluster, from the cluster's Events."""
        from modelport.service.events import event_json, service_events

        self.check_machine("read the events of")
        return [event_json(e) for e in service_events(self.workspace, self.name, self.driver, kinds, since)]

    def get_keys(self) -> tuple[str | None, str | None]:
        """``(primary_key, secondary_key)``."""
        return self._spec.deployment.primary_key, self._spec.deployment.secondary_key

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Replace the primary or secondary key (``set_key``: the new value; default: generated).

        Returns once the front end accepts only the new value; the other key keeps working.
        """
        spec, kind = keys.with_new_key(self._spec, key, set_key)
        self._apply_auth(spec, f"{kind} key regenerated", "key regeneration")

    def _apply_auth(self, spec: ServiceSpec, message: str, operation: str) -> None:
        """Store auth settings and return once the target's front end applies them.

        They need no new replicas: stored, handed to the target, applied in place (the local
        agent's table, the keys Secret the in-cluster front end watches).
        """
        service_store.replace_spec(self.workspace, spec, message)
        self.driver.submit(self.workspace, self.name)
        wait.until_auth_applied(self, spec.auth_digest, operation)

    # modelport's own, beyond Azure ML's two keys (docs/frontend.md, "Named keys").
    def add_key(
        self, key_name: str, rate: str | None = None, burst: int | None = None, quota: str | None = None
    ) -> str:
        """Add a named key with optional limits (``rate="20/s"``, ``burst=40``, ``quota="100000/day"``).

        Returns the key's value, the only time it is shown (it is stored hashed); the key works
        once this returns.
        """
        spec, value = keys.with_named_key(self._spec, key_name, keys.key_limits(rate, burst, quota))
        self._apply_auth(spec, f"Named key {key_name} added", "named key addition")
        return value

    def list_keys(self) -> list[dict[str, Any]]:
        """The named keys: ``name``, ``rate``, ``burst`` and ``quota`` (never the values)."""
        return [keys.describe(key) for key in self._spec.named_keys]

    def update_key(
        self,
        key_name: str,
        rate: str | None = None,
        burst: int | str | None = None,
        quota: str | None = None,
    ) -> None:
        """Change a named key's limits: ``None`` keeps one, ``"none"`` removes it."""
        spec = keys.with_key_limits(self._spec, key_name, rate, burst, quota)
        self._apply_auth(spec, f"Named key {key_name} limits changed", "named key update")

    def remove_key(self, key_name: str) -> None:
        """Remove a named key; it is refused from the moment this returns."""
        spec = keys.without_named_key(self._spec, key_name)
        self._apply_auth(spec, f"Named key {key_name} removed", "named key removal")

    def revoke_tokens(self) -> None:
        """Rotate the token-signing secret: every token issued so far is refused once this returns
        (new ones come from :meth:`get_access_token`)."""
        spec = keys.with_new_token_secret(self._spec)
        self._apply_auth(spec, "Tokens revoked (token-signing secret rotated)", "token revocation")

    def get_access_token(self) -> Token:
        """A signed token (token auth): ``access_token``, ``token_type``, ``refresh_after``, ``expiry_on``."""
        return keys.access_token(self._spec)

    def get_token(self) -> tuple[str, datetime]:
        """Deprecated form of :meth:`get_access_token`: ``(access_token, refresh_after)``."""
        warnings.warn("get_token() is deprecated; use get_access_token()", DeprecationWarning, stacklevel=2)
        token = self.get_access_token()
        return token.access_token, token.refresh_after

    def add_tags(self, tags: dict[str, str]) -> None:
        """Add or replace tags."""
        self._replace_meta(tags=tag_rules.add_tags(self._spec.tags, tags, report=False), message="Tags added")

    def remove_tags(self, tags: list[str] | str) -> None:
        """Remove tags by key."""
        removed = [tags] if isinstance(tags, str) else list(tags)
        self._replace_meta(
            tags=tag_rules.remove_tags(self._spec.tags, removed, report=False), message="Tags removed"
        )

    def add_properties(self, properties: dict[str, str]) -> None:
        """Add properties; existing keys cannot change."""
        self._replace_meta(
            properties=tag_rules.add_properties(dict(self._spec.properties), properties),
            message="Properties added",
        )

    def _replace_meta(self, message: str, **changes: Any) -> None:
        service_store.replace_spec(self.workspace, self._spec.model_copy(update=changes), message)
        self.update_deployment_state()

    def run(self, input_data: Any) -> Any:
        """POST ``input_data`` to the scoring URI with the key or token; return the parsed JSON answer."""
        self.check_machine("call")  # its scoring URI is on that machine's loopback
        uri = self.scoring_uri
        if uri is None:
            raise WebserviceException(
                "Error attempting to call webservice, scoring_uri unavailable. This could be due to a failed "
                f"deployment, or the service is not ready yet.\nCurrent State: {self.state}\n"
                f"Errors: {self.error}"
            )
        body = input_data if isinstance(input_data, str | bytes) else json.dumps(input_data)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        response = httpx.post(
            uri, content=body, headers={**headers, **keys.authorization(self._spec)}, timeout=None
        )
        if response.status_code == 401:  # keys may have been regenerated meanwhile
            self.update_deployment_state()
            response = httpx.post(
                uri, content=body, headers={**headers, **keys.authorization(self._spec)}, timeout=None
            )
        if response.status_code != 200:
            raise WebserviceException(
                "Received bad response from service. More information can be found by calling `.get_logs()` "
                f"on the webservice object.\nResponse Code: {response.status_code}\n"
                f"Headers: {dict(response.headers)}\nContent: {response.content!r}",
                status_code=response.status_code,
            )
        return response.json()

    def serialize(self) -> dict[str, Any]:
        """The Azure ML dict form (what ``modelport service show -o json`` prints)."""
        return serialization.service_dict(self, self._spec)

    # ------------------------------------------------------------------ update
    def update(
        self,
        image: Any = None,
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        models: list[Any] | None = None,
        inference_config: Any = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Change the service (Azure ML's ``AksWebservice.update``); returns at once.

        Settings, models or code changes roll out as a new generation (new replicas ready
        before old ones stop): follow with ``wait_for_deployment()``. Tags are replaced,
        properties only added, keys are changed with ``regen_key``.
        """
        from modelport.service.update import UPDATABLE_KNOBS, plan_update

        given = locals()
        self.check_machine("update")
        knobs = {name: given[name] for name in UPDATABLE_KNOBS}
        if image is not None or kwargs:
            ignored = ", ".join(["image"] * (image is not None) + sorted(kwargs))
            warnings.warn(
                f"update(): {ignored} not supported by modelport; ignored", UserWarning, stacklevel=2
            )
        generation = plan_update(
            self,
            knobs,
            tags=tags,
            properties=properties,
            description=description,
            models=models,
            inference_config=inference_config,
        )
        self.update_deployment_state()
        self._pending_generation = generation

    # ------------------------------------------------------------------ delete
    def delete(self) -> None:
        """Stop the service and remove it with everything it owns; returns when it is gone."""
        self.check_machine("delete")
        if not service_store.mark_deleting(self.workspace, self.name):
            print(f"No service with name {self.name} found to delete.", file=sys.stderr)
            return
        self.driver.delete(self.workspace, self.name)

    # ------------------------------------------------------------------ listing
    @staticmethod
    def list(
        workspace: Workspace,
        compute_type: str | None = None,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        image_digest: str | None = None,
    ) -> list[Webservice]:
        """Services of the workspace, filtered as Azure ML's ``Webservice.list`` filtered them."""
        found = listing.matching_services(workspace, compute_type, model_name, model_id, tags, properties)
        return [Webservice._from_record(workspace, record, driver) for record, driver in found]
