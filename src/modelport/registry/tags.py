"""Azure ML's tag and property rules, shared by models and services.

Filters are lists whose items are ``'key'`` (the key is present) or ``['key', 'value']`` (equal);
properties are add-only; a model's tags and properties are checked as dicts with non-empty string
keys and JSON values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from modelport._notes import note
from modelport.errors import UserErrorException, WebserviceException


def check_mapping(value: object, field: str) -> dict[str, Any]:
    """A copy of the tags or properties ``value`` (None: empty): non-empty string keys, JSON values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WebserviceException(
            f"Invalid {field}: expected a dict of str to str, got {type(value).__name__} {value!r}."
        )
    try:
        json.dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise WebserviceException(f"Invalid {field}: values must be JSON-serialisable ({exc}).") from exc
    for key in value:
        if not isinstance(key, str) or not key:
            raise WebserviceException(f"Invalid {field}: keys must be non-empty strings, got {key!r}.")
    return dict(value)


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


def add_tags(current: Mapping[str, Any], new: Mapping[str, Any], *, report: bool) -> dict[str, Any]:
    """Tags with ``new`` added or replacing; ``report``: say which values are replaced."""
    if report:
        for key, value in new.items():
            if key in current and current[key] != value:
                note(f"Replacing tag {key} -> {current[key]} with {key} -> {value}")
    return {**current, **new}


def remove_tags(current: Mapping[str, Any], keys: Sequence[str], *, report: bool) -> dict[str, Any]:
    """Tags without ``keys``; ``report``: say which keys were not there (not an error)."""
    result = dict(current)
    for key in keys:
        if key not in result and report:
            note(f"Tag with key {key} not found, will not be removed")
        result.pop(key, None)
    return result


def add_properties(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Properties are add-only: refuse keys that already exist, naming them (Azure ML's message)."""
    clashes = [k for k in new if k in current]
    if clashes:
        raise WebserviceException(
            "Error, properties are immutable, the following keys cannot be added/modified: "
            + ",".join(clashes)
        )
    return {**current, **new}
