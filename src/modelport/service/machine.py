"""Which machine this is, for the local target: local services belong to the machine that deployed them.

The identity is a generated id kept in ``$MODELPORT_HOME/machine-id`` (created on first use), not
``/etc/machine-id``: the local target's state (agent lock, materialised services, environments)
lives under ``MODELPORT_HOME``, so two homes on one host run two agents and are two machines.
``MODELPORT_MACHINE_ID`` overrides the id (containers whose home is recreated, tests).
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import UserErrorException, WebserviceException
from modelport.workspace.config import modelport_home

MACHINE_ID_ENV = "MODELPORT_MACHINE_ID"
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Machine:
    """A machine's stable ``id`` and its host ``name`` (for people: lists and messages)."""

    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} (machine id {self.id})"


def this_machine() -> Machine:
    """This machine: ``MODELPORT_MACHINE_ID``, else the id in ``$MODELPORT_HOME/machine-id``."""
    override = os.environ.get(MACHINE_ID_ENV)
    if override is not None:
        if not _VALID.fullmatch(override):
            raise UserErrorException(
                f"{MACHINE_ID_ENV}={override!r} is not a valid machine id. Fix: 1-64 characters of "
                "letters, digits, '.', '_' or '-', starting with a letter or digit; or unset it."
            )
        return Machine(override, os.uname().nodename)
    return Machine(_stored_id(modelport_home() / "machine-id"), os.uname().nodename)


@functools.lru_cache(maxsize=8)  # asked on every call of a local service; the file never changes
def _stored_id(path: Path) -> str:
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if _VALID.fullmatch(stored):
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = uuid.uuid4().hex
    try:
        # Exclusive create: of two processes starting at once, both end up with the first one's id.
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(candidate + "\n")
        return candidate
    except FileExistsError:
        stored = path.read_text(encoding="utf-8").strip()
    if not _VALID.fullmatch(stored):
        raise UserErrorException(
            f"{path} holds no valid machine id ({stored!r}). Fix: delete the file (a new id is "
            f"generated; local services deployed from this machine must then be redeployed) or set "
            f"{MACHINE_ID_ENV}."
        )
    return stored


def agent_setting(machine_id: str) -> str:
    """The workspace setting where the agent of ``machine_id`` announces itself (pid, port, heartbeat)."""
    return f"local.agent.{machine_id}"


def frontend_port_setting(machine_id: str) -> str:
    """The workspace setting holding the front-end port of the agent of ``machine_id``."""
    return f"local.frontend_port.{machine_id}"


def require_here(name: str, machine_id: str | None, machine_name: str | None, operation: str) -> None:
    """Refuse ``operation`` on local service ``name`` unless it belongs to this machine (or to none yet)."""
    if machine_id is None or machine_id == this_machine().id:
        return
    raise WebserviceException(
        f"Cannot {operation} local service {name}: it runs on machine {machine_name} (machine id "
        f"{machine_id}), not on this one ({this_machine()}). Its agent, port and logs are there. Fix: "
        f"run this on {machine_name}, or deploy the service from this machine under another name.",
        status_code=409,
    )
