"""Calling ``run()`` for one request and shaping its result, inside a worker process.

Implements docs/scoring.md, "Entry scripts": how the input is built for each run() style, the
400/415 input errors with their exact messages, the 500 answers for run() failures, timeouts and
unencodable results, and JSON encoding of return values (stdlib ``json.dumps`` as the reference
does, optionally numpy/pandas-aware).
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from modelport.runtime.aml_http import AMLRequest, AMLResponse, is_json_mimetype
from modelport.runtime.entry_script import REQUEST_HEADERS, EntryScript, RunStyle

log = logging.getLogger("modelport.runtime.scoring")

RUN_FAILED_MESSAGE = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR_MESSAGE = "An unexpected internal error occurred. Check the logs for more info."
SHUTTING_DOWN_MESSAGE = "The server is shutting down; send the request to another replica."
JSON_TYPE = "application/json"

# A reply travels to the front process as (status, headers, body, run_failed, run_ms or -1.0).
Reply = tuple[int, list[tuple[str, str]], bytes, bool, float]


class ScoringTimeout(BaseException):
    """Raised inside run() when it exceeds the scoring timeout.

    A ``BaseException`` so that the common ``except Exception`` in scripts does not swallow it.
    """


def timeout_message(timeout_ms: int) -> str:
    """The contract's body message for a scoring timeout."""
    return f"Scoring timeout after {timeout_ms} ms"


def error_reply(status: int, message: str, *, run_failed: bool = False) -> Reply:
    """A JSON ``{"message": ...}`` reply."""
    body = json.dumps({"message": message}).encode("utf-8")
    return status, [("Content-Type", JSON_TYPE)], body, run_failed, -1.0


def numpy_aware_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy arrays and scalars, pandas objects, sets and dates."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series and Index
        return value.tolist()
    if isinstance(value, set | frozenset):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Scorer:
    """Turns requests into run() calls for one loaded entry script."""

    def __init__(self, script: EntryScript, *, timeout_ms: int, numpy_json: bool) -> None:
        self.script = script
        self.timeout_ms = timeout_ms
        self._default: Callable[[Any], Any] | None = numpy_aware_default if numpy_json else None
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, _signum: int, _frame: object) -> None:
        raise ScoringTimeout

    def handle(
        self, method: str, path: str, query: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        """Answer one ``/score`` request (GET/POST for plain and schema scripts, any method for raw)."""
        script = self.script
        if script.style is RunStyle.RAW:
            kwargs: dict[str, Any] = {
                script.input_parameters[0]: AMLRequest(method, path, query, headers, body)
            }
        else:
            built = self._input_arguments(method, query, headers, body)
            if not isinstance(built, dict):
                return built
            kwargs = built
        if script.takes_request_headers:
            kwargs[REQUEST_HEADERS] = _canonical_headers(headers)
        return self._call(kwargs)

    def _input_arguments(
        self, method: str, query: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> dict[str, Any] | Reply:
        script = self.script
        if method == "GET":
            payload: Any = _query_as_dict(query)
            if script.style is RunStyle.PLAIN:
                return {script.input_parameters[0]: json.dumps(payload)}
        elif script.style is RunStyle.PLAIN:
            try:
                return {script.input_parameters[0]: body.decode("utf-8")}
            except UnicodeDecodeError as exc:
                return error_reply(400, f"Input cannot be decoded as UTF-8: {exc}")
        else:
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
            if not is_json_mimetype(content_type.split(";", 1)[0].strip().lower()):
                return error_reply(415, "Expects Content-Type to be application/json")
            if not body:
                return error_reply(400, "POST body is empty. Expecting a JSON dictionary.")
            try:
                payload = json.loads(body)
            except ValueError as exc:
                return error_reply(400, f"POST body could not be decoded as JSON: {exc}")
            if not isinstance(payload, dict):
                return error_reply(400, "POST body should be a JSON dictionary.")
        kwargs: dict[str, Any] = {}
        for name in script.input_parameters:
            if name in payload:
                kwargs[name] = payload[name]
            elif name in script.defaults:
                kwargs[name] = script.defaults[name]
            else:
                return error_reply(400, f"A value is not provided for the '{name}' parameter.")
        return kwargs

    def _call(self, kwargs: dict[str, Any]) -> Reply:
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, self.timeout_ms / 1000.0)
        try:
            result = self.script.run(**kwargs)
        except ScoringTimeout:
            log.error("run() exceeded the scoring timeout of %d ms", self.timeout_ms)
            return error_reply(500, timeout_message(self.timeout_ms), run_failed=True)
        except Exception:
            log.exception("Encountered Exception in run()")
            return error_reply(500, RUN_FAILED_MESSAGE, run_failed=True)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        run_ms = (time.perf_counter() - started) * 1000.0
        return self._shape(result, run_ms)

    def _shape(self, result: Any, run_ms: float) -> Reply:
        if isinstance(result, AMLResponse):
            failed = result.status_code >= 500 or result.headers.get("x-ms-run-function-failed") == "True"
            return (
                result.status_code,
                _user_headers(result.headers.items()),
                result.get_data(),
                failed,
                run_ms,
            )
        if hasattr(result, "status_code") and hasattr(result, "get_data") and hasattr(result, "headers"):
            # A Flask/werkzeug Response from a script that builds its own.
            status = int(result.status_code)
            return (
                status,
                _user_headers(result.headers.items()),
                bytes(result.get_data()),
                status >= 500,
                run_ms,
            )
        try:
            body = b"{}" if result is None else json.dumps(result, default=self._default).encode("utf-8")
        except (TypeError, ValueError):
            log.exception("The value returned by run() cannot be encoded as JSON")
            return error_reply(500, INTERNAL_ERROR_MESSAGE)
        return 200, [("Content-Type", JSON_TYPE)], body, False, run_ms


def _user_headers(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # The run-failed flag is decided by the server from the status; drop the script's copy.
    return [(k, str(v)) for k, v in items if k.lower() != "x-ms-run-function-failed"]


def _canonical_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    # Werkzeug's canonical names (X-Probe, Content-Type); repeated headers joined as WSGI does.
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.title()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _query_as_dict(query: bytes) -> dict[str, Any]:
    # Each value JSON-decoded when it parses, else kept as text; repeated keys become lists.
    collected: dict[str, list[Any]] = {}
    for key, raw in parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True):
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        collected.setdefault(key, []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in collected.items()}
