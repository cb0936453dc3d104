"""Parsing of repeatable ``KEY=VALUE`` flags (``--tag``, ``--property``) and of names."""

from __future__ import annotations

import typer


def parse_pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``; a value without ``=`` is a usage error."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} must be KEY=VALUE, e.g. {flag} stage=prod", param_hint=flag)
        pairs[key] = val
    return pairs


def one_name(positional: str | None, option: str | None, what: str) -> str:
    """The name of a command that takes it as ``NAME`` or ``-n NAME`` (the same name twice is one)."""
    if positional is not None and option is not None and positional != option:
        raise typer.BadParameter(
            f"two names given ({positional!r} and -n {option!r}); give the {what}'s name once, "
            "as NAME or -n NAME",
            param_hint="NAME / -n",
        )
    chosen = positional if positional is not None else option
    if chosen is None:
        raise typer.BadParameter(
            f"the {what} needs a name: give it as NAME or -n NAME", param_hint="NAME / -n"
        )
    return chosen


def parse_filters(values: list[str] | None) -> list[str | list[str]] | None:
    """``--tag k`` (key present) or ``--tag k=v`` (equal) → Azure ML filter items."""
    if not values:
        return None
    return [[k, v] if sep else k for k, sep, v in (value.partition("=") for value in values)]
