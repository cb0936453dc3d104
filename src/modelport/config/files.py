"""Reading a configuration file that may be YAML or JSON, with one clear error per failure.

Azure ML's CLI parsed ``inferenceconfig.json`` and ``deploymentconfig.json`` with ``yaml.safe_load``
first and ``json.loads`` second, so both formats (and JSON files that are not valid YAML, such as
ones indented with tabs) keep working. Every failure names the file and, for a syntax error, the
line and column where parsing stopped.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import UserErrorException


class ConfigWarning(UserWarning):
    """A config file holds something modelport ignores or reinterprets; the message says what and why."""


class ConfigFileError(UserErrorException):
    """A configuration file could not be read or parsed; the message names the file and the position."""


def _position_of_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _parse_error(path: Path, text: str, yaml_error: yaml.YAMLError, json_error: json.JSONDecodeError) -> str:
    # A file that looks like JSON is best explained by the JSON parser's position, anything else by
    # the YAML parser's: that is the format the user meant to write.
    looks_like_json = path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "["))
    if looks_like_json:
        where = f"line {json_error.lineno}, column {json_error.colno}: {json_error.msg}"
    else:
        where = _position_of_yaml_error(yaml_error)
    return f"Cannot parse {path}: {where}. The file must be valid YAML or JSON."


def read_config_file(path: str | os.PathLike[str], *, what: str = "configuration file") -> dict[str, Any]:
    """Return the top-level mapping of a YAML or JSON file.

    ``what`` names the file's role in error messages (for example ``--deploy-config-file``).
    Raises ``ConfigFileError`` when the file is missing, unreadable, not UTF-8, not YAML/JSON,
    empty, or does not hold a mapping at the top level.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{what} {file} doesn't exist.") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{what} {file} is a directory, not a file.") from None
    except PermissionError:
        raise ConfigFileError(f"{what} {file} cannot be read: permission denied.") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            f"Cannot parse {file}: byte {exc.start} is not UTF-8 text. The file must be valid YAML or JSON."
        ) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as yaml_error:
        try:
            content = json.loads(text)
        except json.JSONDecodeError as json_error:
            raise ConfigFileError(_parse_error(file, text, yaml_error, json_error)) from yaml_error
    if content is None:
        raise ConfigFileError(f"{what} {file} is empty; it must hold a YAML or JSON object.")
    if not isinstance(content, dict):
        raise ConfigFileError(
            f"{what} {file} must hold a YAML or JSON object at the top level, "
            f"got {type(content).__name__}: {content!r:.60}"
        )
    return content


def warn(message: str) -> None:
    """Issue a ``ConfigWarning`` (the CLI prints these; Python callers can filter them by class)."""
    warnings.warn(message, ConfigWarning, stacklevel=3)


def warn_unknown_key(source: str, key: str, known: Iterable[str]) -> None:
    """Warn that ``key`` of ``source`` is not read, suggesting the closest known key (typos, casing)."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    warn(f"{source}: unknown key {key!r} ignored.{hint}")


def type_error_message(label: str, value: Any, expected: str) -> str:
    """The line reported for a value of the wrong type: names the field, the value and the expected type."""
    return f"{label} must be {expected}, got {value!r} ({type(value).__name__})."
