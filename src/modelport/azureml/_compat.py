"""What the facade does with Azure-only arguments: accept them, and say once which were ignored."""

from __future__ import annotations

import warnings
from typing import Any


class AzureArgumentIgnoredWarning(UserWarning):
    """An Azure-only argument was given and has no meaning here; it was ignored."""


def warn_ignored(call: str, given: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """One warning naming every argument of ``call`` that was given (differs from its default)."""
    defaults = defaults or {}
    names = [name for name, value in given.items() if value is not None and value != defaults.get(name)]
    if names:
        warnings.warn(
            f"{call}: {', '.join(names)} ignored (Azure-only; no meaning for modelport).",
            AzureArgumentIgnoredWarning,
            stacklevel=3,
        )
