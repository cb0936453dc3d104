"""``AMLRequest``, ``AMLResponse`` and ``rawhttp``: the raw-HTTP side of the entry-script contract.

Scripts written for Azure ML receive a Flask (werkzeug) request under ``@rawhttp`` and may return
an ``AMLResponse``. These classes offer the parts of that API entry scripts use, without Flask:
``method``, ``headers``, ``args``, ``get_data()``, ``get_json()``, ``data``, ``json``, ``files``,
``form``, ``values``, ``full_path``, ``path``, ``url`` on the request; ``status_code``, ``headers``
(assignable), ``get_data()``, ``data`` on the response.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, TypeVar, overload
from urllib.parse import parse_qsl

RAWHTTP_ATTRIBUTE = "__modelport_rawhttp__"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
D = TypeVar("D")


def rawhttp(func: F) -> F:
    """Mark ``run()`` as taking the whole HTTP request (an :class:`AMLRequest`) as its argument."""
    setattr(func, RAWHTTP_ATTRIBUTE, True)
    return func


def is_rawhttp(func: Callable[..., Any]) -> bool:
    """Whether ``func`` (or a function it wraps) was decorated with :func:`rawhttp`."""
    seen: set[int] = set()
    current: Any = func
    while current is not None and id(current) not in seen:
        if getattr(current, RAWHTTP_ATTRIBUTE, False):
            return True
        seen.add(id(current))
        current = getattr(current, "__wrapped__", None)
    return False


class MultiDict(Mapping[str, Any]):
    """A read-only mapping that keeps every value of repeated keys (werkzeug's ``MultiDict`` API)."""

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        self._items: dict[str, list[Any]] = {}
        for key, value in items:
            self._items.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> Any:
        return self._items[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def getlist(self, key: str) -> list[Any]:
        """Every value given for ``key`` (an empty list if none)."""
        return list(self._items.get(key, []))

    def items(self, multi: bool = False) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """``(key, first value)`` pairs, or every pair when ``multi`` is true."""
        for key, values in self._items.items():
            if multi:
                for value in values:
                    yield key, value
            else:
                yield key, values[0]

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        """A plain dict: first value per key, or the list of values when ``flat`` is false."""
        if flat:
            return {key: values[0] for key, values in self._items.items()}
        return {key: list(values) for key, values in self._items.items()}

    def __repr__(self) -> str:
        return f"MultiDict({list(self.items(multi=True))!r})"


class Headers:
    """Case-insensitive HTTP headers that keep their order and allow repeated names."""

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        if isinstance(items, Mapping):
            items = items.items()
        for key, value in items or ():
            self._items.append((str(key), str(value)))

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: D) -> str | D: ...
    @overload
    def get(self, key: str, default: D, type: Callable[[str], T]) -> T | D: ...
    @overload
    def get(self, key: str, *, type: Callable[[str], T]) -> T | None: ...

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        """The first value of ``key`` (any case), converted by ``type`` if given, else ``default``."""
        lower = key.lower()
        for name, value in self._items:
            if name.lower() == lower:
                if type is None:
                    return value
                try:
                    return type(value)
                except ValueError:
                    return default
        return default

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key`` (any case)."""
        lower = key.lower()
        return [value for name, value in self._items if name.lower() == lower]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def __setitem__(self, key: str, value: object) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.remove(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def set(self, key: str, value: object) -> None:
        """Replace every value of ``key`` by ``value``."""
        self.remove(key)
        self._items.append((key, str(value)))

    def add(self, key: str, value: object) -> None:
        """Add one more ``key: value`` line, keeping existing ones."""
        self._items.append((key, str(value)))

    def remove(self, key: str) -> None:
        """Drop every value of ``key`` (no error if absent)."""
        lower = key.lower()
        self._items = [(name, value) for name, value in self._items if name.lower() != lower]

    def keys(self) -> list[str]:
        """Header names in order (repeated names repeated)."""
        return [name for name, _ in self._items]

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs in order."""
        return list(self._items)

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs, as werkzeug names it."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class FileStorage:
    """One uploaded file of a ``multipart/form-data`` request (werkzeug's ``FileStorage`` API)."""

    def __init__(self, data: bytes, *, name: str, filename: str | None, content_type: str) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.mimetype = content_type.split(";", 1)[0].strip().lower()
        self.stream: IO[bytes] = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        """Read from the file's content."""
        return self.stream.read(size)

    def save(self, dst: str | IO[bytes]) -> None:
        """Write the file's content to a path or a binary file object."""
        self.stream.seek(0)
        if isinstance(dst, str):
            with open(dst, "wb") as out:
                shutil.copyfileobj(self.stream, out)
        else:
            shutil.copyfileobj(self.stream, dst)

    def __repr__(self) -> str:
        return f"<FileStorage {self.filename!r} ({self.content_type!r})>"


class BadRequest(ValueError):
    """The request body could not be parsed as the script asked (werkzeug raises ``BadRequest``)."""


def is_json_mimetype(mimetype: str) -> bool:
    """Whether a media type is JSON: ``application/json`` or any ``+json`` type."""
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


class _ContentTyped:
    """``content_type`` and ``mimetype`` as werkzeug offers them on requests and responses alike."""

    headers: Headers

    @property
    def content_type(self) -> str | None:
        """The raw ``Content-Type`` header."""
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        """The media type without parameters, lower case (``""`` when absent)."""
        return (self.content_type or "").split(";", 1)[0].strip().lower()


class AMLRequest(_ContentTyped):
    """The HTTP request handed to a ``@rawhttp`` ``run()`` (a werkzeug-``Request``-like object)."""

    def __init__(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        host: str = "localhost",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = Headers(headers)
        self.remote_addr = remote_addr
        self.host = self.headers.get("Host") or host
        self._body = body
        self._args: MultiDict | None = None
        self._form: tuple[MultiDict, MultiDict] | None = None

    @property
    def args(self) -> MultiDict:
        """The query-string parameters."""
        if self._args is None:
            self._args = MultiDict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))
        return self._args

    @property
    def full_path(self) -> str:
        """Path and query string; werkzeug always includes the ``?``."""
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def url(self) -> str:
        """The full URL of the request (``http://`` scheme: TLS ends before the replica)."""
        query = self.query_string.decode("latin-1")
        return f"{self.base_url}?{query}" if query else self.base_url

    @property
    def base_url(self) -> str:
        """The URL without the query string."""
        return f"{self.host_url.rstrip('/')}{self.path}"

    @property
    def host_url(self) -> str:
        """Scheme and host, ending with ``/``."""
        return f"http://{self.host}/"

    @property
    def content_length(self) -> int | None:
        """The ``Content-Length`` header as an int, if valid."""
        return self.headers.get("Content-Length", type=int)

    @property
    def is_json(self) -> bool:
        """Whether the content type is JSON."""
        return is_json_mimetype(self.mimetype)

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        """The raw body: bytes, or str (UTF-8, invalid bytes replaced) when ``as_text``."""
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def data(self) -> bytes:
        """The raw body."""
        return self._body

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON; a non-JSON content type or bad JSON raises unless ``silent``."""
        if not (force or self.is_json):
            if silent:
                return None
            raise BadRequest(
                "Did not attempt to load JSON data because the request Content-Type was not "
                "'application/json'."
            )
        try:
            return json.loads(self._body)
        except ValueError as exc:
            if silent:
                return None
            raise BadRequest(f"Failed to decode JSON object: {exc}") from exc

    @property
    def json(self) -> Any:
        """Same as ``get_json()``."""
        return self.get_json()

    @property
    def form(self) -> MultiDict:
        """Fields of a form-encoded or multipart body."""
        return self._parsed_form()[0]

    @property
    def files(self) -> MultiDict:
        """Uploaded files of a multipart body, as :class:`FileStorage` objects."""
        return self._parsed_form()[1]

    @property
    def values(self) -> MultiDict:
        """Query-string parameters and form fields together."""
        return MultiDict([*self.args.items(multi=True), *self.form.items(multi=True)])

    def _parsed_form(self) -> tuple[MultiDict, MultiDict]:
        if self._form is None:
            self._form = _parse_form(self.content_type or "", self.mimetype, self._body)
        return self._form

    def __repr__(self) -> str:
        return f"<AMLRequest {self.method} {self.full_path!r}>"


def _parse_form(content_type: str, mimetype: str, body: bytes) -> tuple[MultiDict, MultiDict]:
    if mimetype == "application/x-www-form-urlencoded":
        return MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), MultiDict()
    if mimetype != "multipart/form-data":
        return MultiDict(), MultiDict()
    # The e-mail parser understands MIME multipart bodies; HTTP policy keeps binary parts intact.
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        # Decoded, a non-multipart part's payload is bytes (None when empty); typeshed's union
        # also names the nested-message case, which iter_parts() of a form does not yield.
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        if filename is None:
            charset = part.get_content_charset() or "utf-8"
            fields.append((name, payload.decode(charset, "replace")))
        else:
            part_type = part.get("Content-Type", "application/octet-stream")
            files.append((name, FileStorage(payload, name=name, filename=filename, content_type=part_type)))
    return MultiDict(fields), MultiDict(files)


class AMLResponse(_ContentTyped):
    """A response returned by ``run()``: status, headers and body sent as they are.

    ``AMLResponse(message, status_code, response_headers=None, json_str=False,
    run_function_failed=False)``: ``message`` ``None`` becomes ``{}`` (JSON); with ``json_str`` the
    message is JSON-encoded; otherwise it is the raw body (str, bytes or an iterable of them) with
    ``text/html; charset=utf-8`` unless the headers name a content type.
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, Any] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        self.status_code = int(status_code)
        self.headers = Headers()
        if message is None or json_str:
            self._body = b"{}" if message is None else json.dumps(message).encode("utf-8")
            self.headers.set("Content-Type", "application/json")
        else:
            self._body = _body_bytes(message)
            self.headers.set("Content-Type", "text/html; charset=utf-8")
        for key, value in (response_headers or {}).items():
            self.headers.set(key, value)
        self.headers.set("x-ms-run-function-failed", str(bool(run_function_failed)))

    @property
    def status(self) -> str:
        """The status code as text (``"200"``)."""
        return str(self.status_code)

    def get_data(self, as_text: bool = False) -> Any:
        """The body as bytes, or str when ``as_text``."""
        return self._body.decode("utf-8", "replace") if as_text else self._body

    def set_data(self, value: str | bytes) -> None:
        """Replace the body."""
        self._body = _body_bytes(value)

    @property
    def data(self) -> bytes:
        """The body."""
        return self._body

    @data.setter
    def data(self, value: str | bytes) -> None:
        self.set_data(value)

    def __repr__(self) -> str:
        return f"<AMLResponse {self.status_code} {len(self._body)} bytes>"


def _body_bytes(message: Any) -> bytes:
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    if isinstance(message, str):
        return message.encode("utf-8")
    # Iterables (generators included) are collected: replies are sent whole, in one write.
    return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in message)
