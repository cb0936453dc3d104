"""Azure ML's tag and property rules, shared by models and services.

Filters are lists whose items are ``'key'`` (the key is present) or ``['key', 'value']`` (equal);
properties are add-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelport.errors import UserErrorException, WebserviceException


def normalise_filters(value: object, field: str) -> list[tuple[str, str | None]]:
    """Azure ML filter lists: items ``'key'`` (present) or ``['key', 'value']`` (equal)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserErrorException(
            f"{field} must be a list whose items are 'key' or ['key', 'value'], got {value!r}."
        )
    filters: list[tuple[str, str | None]] = []
    for item in value:
        if isinstance(item, str):
            filters.append((item, None))
        elif isinstance(item, list | tuple) and len(item) == 2:
            filters.append((str(item[0]), str(item[1])))
        else:
            raise UserErrorException(f"Invalid {field} filter item {item!r}: use 'key' or ['key', 'value'].")
    return filters


def matches_filters(values: Mapping[str, Any], filters: Sequence[tuple[str, str | None]]) -> bool:
    """True when ``values`` has every key of ``filters`` (and, where one is given, its value)."""
    return all(k in values and (v is None or str(values[k]) == v) for k, v in filters)


def add_properties(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Properties are add-only: refuse keys that already exist, naming them (Azure ML's message)."""
    clashes = [k for k in new if k in current]
    if clashes:
        raise WebserviceException(
            "Error, properties are immutable, the following keys cannot be added/modified: "
            + ",".join(clashes)
        )
    return {**current, **new}
