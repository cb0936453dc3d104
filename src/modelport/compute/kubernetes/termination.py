"""Graceful termination of modelport's pods, the replicas' and the front end's alike.

The preStop hook holds SIGTERM back while the deletion propagates (the front end's pod watch,
kube-proxy's Endpoints), so that no new connection arrives once the process stops accepting; it
runs ``python``, which every image that runs modelport has (the Debian-built base image may lack
coreutils' sleep). After the hook, requests in flight get the graceful timeout; the pod's grace
period covers both and a margin (docs/kubernetes.md, "Graceful termination").
"""

from __future__ import annotations

PRESTOP_DELAY_S = 5
TERMINATION_MARGIN_S = 5
PRESTOP_HOOK = {"exec": {"command": ["python", "-c", f"import time; time.sleep({PRESTOP_DELAY_S})"]}}


def termination_grace(graceful_timeout_s: int) -> int:
    """A pod's ``terminationGracePeriodSeconds``: the preStop delay, the drain, and a margin."""
    return PRESTOP_DELAY_S + graceful_timeout_s + TERMINATION_MARGIN_S
