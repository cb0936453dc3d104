"""Settings of ``modelport serve``: command-line flags, environment variables and ``config.json``.

Precedence, as in Azure ML's server: flag > environment variable > ``config.json`` > default
(docs/scoring.md, "Settings"). Variables that are dead or mis-wired in the reference work as their
documentation says: ``SERVER_PORT``/``HEALTH_PORT`` set the ports when no flag is given,
``AZUREML_LOG_LEVEL`` sets the log level, ``AML_MODEL_DC_STORAGE_ENABLED`` is read. Every invalid
value is reported at once, naming the variable, the value and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport import __version__
from modelport.errors import ConfigValidationError
from modelport.host import current as current_host
from modelport.runtime.swagger import ServiceIdentity

DEFAULT_PORT = 5001
DEFAULT_HEALTH_PORT = 5000
DEFAULT_SCORING_TIMEOUT_MS = 3_600_000
DEFAULT_WORKER_TIMEOUT_S = 300
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
DEFAULT_GRACEFUL_TIMEOUT_S = 30
MAX_GRACEFUL_TIMEOUT_S = 86_400
GRACEFUL_TIMEOUT_ENV = "MODELPORT_GRACEFUL_TIMEOUT"
SERVER_VERSION = f"modelport/{__version__}"
JSON_ENCODINGS = ("standard", "numpy")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# sun_path's size: 108 bytes on Linux, 104 on macOS and the BSDs.

# Keys config.json may set (the environment-variable names), docs/scoring.md, "Settings".
CONFIG_FILE_KEYS = (
    "AML_APP_ROOT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_ENTRY_SCRIPT",
    "SERVICE_NAME",
    "WORKSPACE_NAME",
    "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION",
    "SCORING_TIMEOUT_MS",
    "AZUREML_LOG_LEVEL",
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_MODEL_DC_STORAGE_ENABLED",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AML_CORS_ORIGINS",
    "AZUREML_MODEL_DIR",
    "HOSTNAME",
    "AZUREML_DEBUG_PORT",
    "MODELPORT_JSON_ENCODING",
)


@dataclass(frozen=True)
class ServeFlags:
    """The command-line flags of ``modelport serve`` (``None``: not given)."""

    entry_script: str | None = None
    model_dir: str | None = None
    port: int | None = None
    health_port: int | None = None
    worker_count: int | None = None
    host: str | None = None
    access_control_allow_origins: str | None = None
    config_file: str | None = None
    appinsights_instrumentation_key: str | None = None
    max_request_bytes: int | None = None
    scoring_timeout_ms: int | None = None
    json_encoding: str | None = None
    unix_socket: str | None = None
    graceful_timeout: int | None = None
    parent_fd: int | None = None


@dataclass(frozen=True)
class ServeConfig:
    """Everything the front process needs, resolved and validated."""

    host: str
    port: int
    health_port: int | None
    worker_count: int
    scoring_timeout_ms: int
    worker_timeout_s: float
    max_request_bytes: int
    cors_origins: tuple[str, ...]
    server_version: str | None
    log_level: str
    worker_env: dict[str, str] = field(repr=False)
    warnings: tuple[str, ...] = ()
    unix_socket: str | None = None  # a second listener, for a front end on the same machine
    # After SIGTERM/SIGINT: how long requests in flight may take to finish before they get a 503.
    graceful_timeout_s: int = DEFAULT_GRACEFUL_TIMEOUT_S
    # An inherited pipe's read end: its end-of-file means the parent has gone (runtime/lifeline.py).
    parent_fd: int | None = None


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process reads from the environment the front process prepared."""

    entry_script: Path | None
    app_root: Path
    source_directory: Path | None
    scoring_timeout_ms: int
    numpy_json: bool
    identity: ServiceIdentity
    log_level: str

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> WorkerSettings:
        """Read the settings from an environment made by :func:`load_config`."""
        app_root = Path(env.get("AML_APP_ROOT") or os.getcwd())
        script = env.get("AZUREML_ENTRY_SCRIPT")
        source = env.get("AZUREML_SOURCE_DIRECTORY")
        return cls(
            entry_script=app_root / script if script else None,
            app_root=app_root,
            source_directory=app_root / source if source else None,
            scoring_timeout_ms=int(env.get("SCORING_TIMEOUT_MS", DEFAULT_SCORING_TIMEOUT_MS)),
            numpy_json=env.get("MODELPORT_JSON_ENCODING", "standard") == "numpy",
            identity=ServiceIdentity(
                name=env.get("SERVICE_NAME") or "ML service",
                version=env.get("SERVICE_VERSION") or "1.0",
                path_prefix=env.get("SERVICE_PATH_PREFIX", ""),
            ),
            log_level=env.get("AZUREML_LOG_LEVEL", "INFO").upper(),
        )


def load_config(flags: ServeFlags, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Resolve flags, environment and config file into a :class:`ServeConfig`.

    Raises ``ConfigValidationError`` listing every invalid setting.
    """
    env = dict(os.environ if environ is None else environ)
    errors: list[str] = []
    warnings: list[str] = []
    cwd = Path.cwd()
    app_root = Path(env.get("AML_APP_ROOT") or cwd).absolute()

    if flags.entry_script is not None:
        env["AZUREML_ENTRY_SCRIPT"] = os.path.realpath(flags.entry_script)
    if flags.config_file is not None:
        env["AZUREML_CONFIG_FILE"] = os.path.abspath(flags.config_file)
    file_values = _read_config_file(env, app_root, errors, warnings)
    for key, value in file_values.items():
        env.setdefault(key, str(value))
    app_root = Path(env.get("AML_APP_ROOT") or app_root).absolute()
    env["AML_APP_ROOT"] = str(app_root)

    script = env.get("AZUREML_ENTRY_SCRIPT")
    if script:
        script_path = app_root / script
        if not script_path.is_file():
            errors.append(
                f"AZUREML_ENTRY_SCRIPT / --entry_script: {script_path} does not exist (No such file or "
                "directory.); pass the path of your score.py."
            )
        env["AZUREML_ENTRY_SCRIPT"] = str(script_path)
    if flags.model_dir is not None:
        env["AZUREML_MODEL_DIR"] = flags.model_dir
    if flags.access_control_allow_origins is not None:
        env["AML_CORS_ORIGINS"] = flags.access_control_allow_origins
    if flags.scoring_timeout_ms is not None:
        env["SCORING_TIMEOUT_MS"] = str(flags.scoring_timeout_ms)
    if flags.json_encoding is not None:
        env["MODELPORT_JSON_ENCODING"] = flags.json_encoding

    port = _integer(flags.port, env, "SERVER_PORT", "--port", DEFAULT_PORT, 1, 65535, errors)
    separate = _true(env.get("SEPERATE_HEALTH_ENDPOINT") or env.get("SEPARATE_HEALTH_ENDPOINT"))
    health_port = _integer(
        flags.health_port, env, "HEALTH_PORT", "--health_port", DEFAULT_HEALTH_PORT, 1, 65535, errors
    )
    workers = _integer(flags.worker_count, env, "WORKER_COUNT", "--worker_count", 1, 1, 1024, errors)
    timeout_ms = _integer(None, env, "SCORING_TIMEOUT_MS", "", DEFAULT_SCORING_TIMEOUT_MS, 1, 2**31, errors)
    worker_timeout = _integer(None, env, "WORKER_TIMEOUT", "", DEFAULT_WORKER_TIMEOUT_S, 1, 2**31, errors)
    max_bytes = _integer(
        flags.max_request_bytes,
        env,
        "MODELPORT_MAX_REQUEST_BYTES",
        "--max_request_bytes",
        DEFAULT_MAX_REQUEST_BYTES,
        1,
        2**40,
        errors,
    )
    graceful = graceful_timeout(flags.graceful_timeout, env, errors)
    encoding = env.get("MODELPORT_JSON_ENCODING", "standard")
    if encoding not in JSON_ENCODINGS:
        errors.append(
            f"MODELPORT_JSON_ENCODING / --json_encoding: {encoding!r} is not one of "
            f"{', '.join(JSON_ENCODINGS)}."
        )
    level = env.get("AZUREML_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        errors.append(f"AZUREML_LOG_LEVEL: {level!r} is not one of {', '.join(LOG_LEVELS)}.")
    host = flags.host or env.get("MODELPORT_HOST") or "127.0.0.1"
    unix_socket = flags.unix_socket or env.get("MODELPORT_UNIX_SOCKET") or None
    if unix_socket is not None:
        _check_unix_socket(unix_socket, errors)
    if flags.parent_fd is not None:
        _check_parent_fd(flags.parent_fd, errors)
    if errors:
        raise ConfigValidationError(errors, header="modelport serve: invalid settings")
    if env.get("AML_MODEL_DC_STORAGE_ENABLED") and not env.get("AML_MDC_STORAGE_ENABLED"):
        env["AML_MDC_STORAGE_ENABLED"] = env["AML_MODEL_DC_STORAGE_ENABLED"]
    if flags.appinsights_instrumentation_key is not None:
        env["AML_APP_INSIGHTS_KEY"] = flags.appinsights_instrumentation_key
    if env.get("AML_APP_INSIGHTS_KEY") or _true(env.get("AML_APP_INSIGHTS_ENABLED")):
        warnings.append(
            "Application Insights export is not supported; request metrics are at GET /metrics (Prometheus)."
        )
    version_enabled = env.get("SERVER_VERSION_LOG_RESPONSE_ENABLED", "true").lower() == "true"
    # Workers rebuild this configuration from their environment: export what flags decided.
    env["WORKER_COUNT"] = str(workers)
    env["SCORING_TIMEOUT_MS"] = str(timeout_ms)
    env["MODELPORT_MAX_REQUEST_BYTES"] = str(max_bytes)
    # Scripts that print expect to see their lines in the log at once.
    env["PYTHONUNBUFFERED"] = "1"
    return ServeConfig(
        host=host,
        port=port,
        health_port=health_port if separate else None,
        worker_count=workers,
        scoring_timeout_ms=timeout_ms,
        worker_timeout_s=float(worker_timeout),
        max_request_bytes=max_bytes,
        cors_origins=tuple(o.strip() for o in env.get("AML_CORS_ORIGINS", "").split(",") if o.strip()),
        server_version=SERVER_VERSION if version_enabled else None,
        log_level=level,
        worker_env=env,
        warnings=tuple(warnings),
        unix_socket=unix_socket,
        graceful_timeout_s=graceful,
        parent_fd=flags.parent_fd,
    )


def graceful_timeout(flag: int | None, env: Mapping[str, str], errors: list[str]) -> int:
    """``--graceful_timeout`` / ``MODELPORT_GRACEFUL_TIMEOUT`` in whole seconds (0: stop at once).

    Shared by ``modelport serve`` and the in-cluster front end; an invalid value is appended to
    ``errors`` (naming the flag, the variable, the value and the fix) and the default returned.
    """
    return _integer(
        flag,
        env,
        GRACEFUL_TIMEOUT_ENV,
        "--graceful_timeout",
        DEFAULT_GRACEFUL_TIMEOUT_S,
        0,
        MAX_GRACEFUL_TIMEOUT_S,
        errors,
    )


def _check_unix_socket(value: str, errors: list[str]) -> None:
    host = current_host()
    # sun_path holds the address and its terminating NUL (an abstract name: its leading NUL).
    if len(value.encode()) > host.unix_path_max - 1:
        errors.append(
            f"MODELPORT_UNIX_SOCKET / --unix_socket: {value!r} is {len(value.encode())} bytes, more than the "
            f"{host.unix_path_max - 1} a Unix socket address holds on {host.name}; use a shorter path"
            + (" or an abstract @name." if host.linux_features else ".")
        )
    elif value.startswith("@") and not host.linux_features:
        errors.append(
            f"MODELPORT_UNIX_SOCKET / --unix_socket: {value!r} is an abstract socket name, which only Linux "
            f"has (this is {host.name}); give a file path instead."
        )


def _check_parent_fd(fd: int, errors: list[str]) -> None:
    try:
        os.fstat(fd)
    except OSError:
        errors.append(
            f"--parent_fd: {fd} is not an open file descriptor of this process; pass one inherited from "
            "the parent (the local agent does), or leave the flag out."
        )


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _integer(
    flag: int | None,
    env: Mapping[str, str],
    name: str,
    flag_name: str,
    default: int,
    low: int,
    high: int,
    errors: list[str],
) -> int:
    where = f"{name} / {flag_name}" if flag_name else name
    raw: Any = flag if flag is not None else env.get(name, default)
    try:
        value = int(str(raw).strip())
    except ValueError:
        errors.append(f"{where}: {raw!r} is not an integer; give a whole number between {low} and {high}.")
        return default
    if not low <= value <= high:
        errors.append(f"{where}: {value} is out of range; give a whole number between {low} and {high}.")
        return default
    return value


def _read_config_file(
    env: dict[str, str], app_root: Path, errors: list[str], warnings: list[str]
) -> dict[str, Any]:
    candidates = []
    if env.get("AZUREML_CONFIG_FILE"):
        candidates.append(Path(env["AZUREML_CONFIG_FILE"]))
    candidates.append(app_root / "config.json")
    if env.get("AZUREML_ENTRY_SCRIPT"):
        candidates.append((app_root / env["AZUREML_ENTRY_SCRIPT"]).parent / "config.json")
    for index, path in enumerate(candidates):
        if index == 0 and env.get("AZUREML_CONFIG_FILE") and not path.is_file():
            errors.append(f"AZUREML_CONFIG_FILE / --config_file: {path} does not exist; pass a JSON file.")
            return {}
        if not path.is_file() or path.stat().st_size == 0:
            continue
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            errors.append(f"config file {path}: not valid JSON ({exc}); fix or remove it.")
            return {}
        if not isinstance(values, dict):
            errors.append(
                f"config file {path}: expected a JSON object of settings, got {type(values).__name__}."
            )
            return {}
        unknown = sorted(set(values) - set(CONFIG_FILE_KEYS))
        if unknown:
            # A warning, not an error: Azure ML ignores unknown keys, and files that work there must
            # keep working here.
            warnings.append(
                f"config file {path}: ignoring unknown keys {unknown}; "
                f"known keys are {', '.join(CONFIG_FILE_KEYS)}."
            )
        return {key: value for key, value in values.items() if key in CONFIG_FILE_KEYS}
    return {}
