"""What the facade does with Azure-only arguments: accept them, and say once which were ignored."""

from __future__ import annotations

import warnings
from typing import Any


class AzureArgumentIgnoredWarning(UserWarning):
    """An Azure-only argument was given and has no meaning here; it was ignored."""


def warn_ignored(
    call: str, given: dict[str, Any], defaults: dict[str, Any] | None = None, depth: int = 1
) -> None:
    """One warning naming every argument of ``call`` that was given (differs from its default).

    ``depth``: how many facade frames lie between the user's call and this one (1: the caller is
    the facade method the user called), so that the warning points at the user's line.
    """
    defaults = defaults or {}
    names = [name for name, value in given.items() if value is not None and value != defaults.get(name)]
    if names:
        warnings.warn(
            f"{call}: {', '.join(names)} ignored (Azure-only; no meaning for modelport).",
            AzureArgumentIgnoredWarning,
            stacklevel=2 + depth,
        )
