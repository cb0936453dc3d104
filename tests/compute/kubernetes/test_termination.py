"""Tier 0: the graceful-termination settings every modelport pod gets."""

from __future__ import annotations

from modelport.compute.kubernetes.termination import PRESTOP_HOOK


def test_the_prestop_hook_is_valid_python() -> None:
    command = PRESTOP_HOOK["exec"]["command"]
    compile(command[2], "<preStop>", "exec")  # a syntax error would fail every pod's termination
