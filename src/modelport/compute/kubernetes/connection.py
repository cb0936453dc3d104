"""Reaching a Kubernetes target's cluster: a client, and its failures as modelport's errors.

:func:`connect` makes a lightkube client from the target's kubeconfig and context (or a pod's
service-account credentials) and refuses a missing file, an unknown context or unreadable
credentials with the fix; :func:`cluster_errors` tells a refusal that retrying cannot fix from
one that it may; :func:`get_or_none` and :func:`delete_if_present` read and delete an object that
may not be there. Requires the ``kubernetes`` extra (lightkube), imported only when called.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport.compute.kubernetes.objects import FIELD_MANAGER
from modelport.compute.kubernetes.target import KubernetesTarget
from modelport.errors import ComputeTargetException, PermanentTargetError, TemporaryTargetError

REQUEST_TIMEOUT_S = 15.0
# API refusals that the same request would get again: malformed or invalid objects, conflicts with
# another field manager, a resource the server does not serve. Quotas (403), admission that
# changes its mind, throttling (429) and server errors are worth retrying.
PERMANENT_API_CODES = frozenset({400, 404, 405, 409, 410, 413, 415, 422})


def _kubeconfig_path(target: KubernetesTarget) -> Path:
    if target.kubeconfig:
        return Path(target.kubeconfig).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path("~/.kube/config").expanduser()


def connect(target: KubernetesTarget) -> Any:
    """A lightkube client for the target's cluster (field manager ``modelport``)."""
    try:
        from lightkube import Client, KubeConfig
        from lightkube.core.exceptions import ConfigError
    except ImportError as exc:
        raise ComputeTargetException(
            "The Kubernetes target needs the lightkube client. Fix: pip install 'modelport[kubernetes]'."
        ) from exc
    import httpx2

    if target.in_cluster:
        try:
            config: Any = KubeConfig.from_service_account()
        except ConfigError as exc:
            raise ComputeTargetException(
                f"No in-cluster credentials here ({exc}). Fix: run inside a pod with a service account, or "
                "attach with a kubeconfig (--kubeconfig, --context)."
            ) from exc
        single = config.get()
    else:
        path = _kubeconfig_path(target)
        if not path.is_file():
            raise ComputeTargetException(
                f"kubeconfig {str(path)!r} does not exist. Fix: pass --kubeconfig PATH (kubeconfig= in "
                "Python) or set KUBECONFIG."
            )
        try:
            config = KubeConfig.from_file(path)
        except (ConfigError, OSError, ValueError) as exc:
            raise ComputeTargetException(f"kubeconfig {str(path)!r} cannot be read: {exc}") from exc
        if target.context is not None and target.context not in config.contexts:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise ComputeTargetException(
                f"context={target.context!r} is not in kubeconfig {str(path)!r} (contexts: {known}). Fix: "
                "pass one of those with --context."
            )
        try:
            single = config.get(target.context)
        except ConfigError:
            single = None
        if single is None:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise ComputeTargetException(
                f"kubeconfig {str(path)!r} has no current context. Fix: pass --context with one of: {known}."
            )
    try:
        return Client(config=single, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(REQUEST_TIMEOUT_S))
    except OSError as exc:  # a certificate file named by the kubeconfig is missing or unreadable
        where = (
            "the in-cluster credentials"
            if target.in_cluster
            else f"kubeconfig {str(_kubeconfig_path(target))!r}"
        )
        raise ComputeTargetException(
            f"{where} (context {target.context or '(current)'}): cannot load its credentials ({exc}). Fix: "
            "check the certificate and key files it names, or refresh the kubeconfig from your cluster."
        ) from exc


@contextlib.contextmanager
def cluster_errors(target: KubernetesTarget, doing: str) -> Iterator[None]:
    """Turn transport and API failures into one error that says what failed and whether retrying
    can help: :class:`PermanentTargetError` for a refusal retrying cannot fix (invalid, conflict),
    :class:`TemporaryTargetError` for the rest (unreachable, a quota, throttling, a server error)."""
    import httpx2
    from lightkube.core.exceptions import ApiError

    where = "the in-cluster API" if target.in_cluster else f"context {target.context or '(current)'}"
    try:
        yield
    except ApiError as exc:
        code = exc.status.code
        hint = ""
        if code in (401, 403):
            hint = " Fix: use credentials allowed to manage these objects (cluster-admin for attach)."
        kind = PermanentTargetError if code in PERMANENT_API_CODES else TemporaryTargetError
        raise kind(
            f"The cluster ({where}) refused {doing}: {exc.status.message} (HTTP {code}).{hint}",
            status_code=code,
        ) from exc
    except httpx2.HTTPError as exc:
        raise TemporaryTargetError(
            f"Cannot reach the cluster ({where}) while {doing}: {exc}. Fix: check that the cluster runs "
            "and that the kubeconfig's server address is reachable from here."
        ) from exc


def get_or_none(client: Any, kind: Any, name: str, namespace: str | None = None) -> Any:
    """The object, or None when the server has none of that name (other errors raise)."""
    from lightkube.core.exceptions import ApiError

    try:
        return client.get(kind, name) if namespace is None else client.get(kind, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


def delete_if_present(client: Any, kind: Any, name: str, namespace: str | None = None) -> None:
    """Delete an object (namespaced ones with foreground propagation); one already gone is fine."""
    from lightkube.core.exceptions import ApiError
    from lightkube.types import CascadeType

    try:
        if namespace is None:
            client.delete(kind, name)
        else:
            client.delete(kind, name, namespace=namespace, cascade=CascadeType.FOREGROUND)
    except ApiError as exc:
        if exc.status.code != 404:
            raise
