"""Routes, status codes, JSON error bodies and the id/version/CORS headers (docs/scoring.md, "Routes")."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.runtime.conftest import Server, ServerFactory

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)


def test_health_answers_healthy(plain_server: Server) -> None:
    reply = plain_server.client().get("/")
    assert reply.status_code == 200
    assert reply.text == "Healthy"
    assert reply.headers["content-type"] == "text/html; charset=utf-8"


def test_unknown_path_is_404_json(plain_server: Server) -> None:
    reply = plain_server.client().get("/api/v1/service/iris/score")
    assert reply.status_code == 404
    assert reply.json() == {"message": NOT_FOUND}
    assert "x-request-id" not in reply.headers


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_on_score_are_405_json(plain_server: Server, method: str) -> None:
    reply = plain_server.client().request(method, "/score")
    assert reply.status_code == 405
    assert reply.json() == {"message": "The method is not allowed for the requested URL."}


def test_head_and_options_on_plain_score(plain_server: Server) -> None:
    client = plain_server.client()
    head = client.head("/score")
    assert head.status_code == 405
    options = client.options("/score")
    assert options.status_code == 200
    assert options.content == b""


def test_request_id_generated_when_absent(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content="x")
    generated = reply.headers["x-request-id"]
    assert uuid.UUID(generated).version == 4
    assert reply.headers["x-ms-request-id"] == generated
    assert "x-ms-client-request-id" not in reply.headers


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"x-request-id": "A"}, {"x-request-id": "A", "x-ms-request-id": "A"}),
        ({"x-ms-request-id": "B"}, {"x-ms-request-id": "B", "x-ms-client-request-id": "B"}),
        ({"x-ms-client-request-id": "C"}, {"x-ms-request-id": "C", "x-ms-client-request-id": "C"}),
        (
            {"x-request-id": "A", "x-ms-request-id": "B", "x-ms-client-request-id": "C"},
            {"x-request-id": "A", "x-ms-request-id": "B", "x-ms-client-request-id": "C"},
        ),
    ],
)
def test_request_id_table(plain_server: Server, sent: dict[str, str], expected: dict[str, str]) -> None:
    reply = plain_server.client().post("/score", content="x", headers=sent)
    assert reply.status_code == 200
    for name, value in expected.items():
        assert reply.headers[name] == value
    if "x-ms-client-request-id" not in expected:
        assert "x-ms-client-request-id" not in reply.headers


def test_trace_id_is_echoed(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content="x", headers={"TraceId": "trace-123"})
    assert reply.headers["traceid"] == "trace-123"


@pytest.mark.parametrize("path", ["/", "/score", "/swagger.json"])
def test_long_x_request_id_is_431(plain_server: Server, path: str) -> None:
    reply = plain_server.client().get(path, headers={"x-request-id": "a" * 101})
    assert reply.status_code == 431
    assert reply.json() == {"message": "x-request-id must not exceed 100 characters"}


@pytest.mark.parametrize("header", ["x-ms-request-id", "x-ms-client-request-id"])
def test_long_ms_ids_are_431(plain_server: Server, header: str) -> None:
    headers = {header: "b" * 101, "x-request-id": "A"}
    reply = plain_server.client().post("/score", content="x", headers=headers)
    assert reply.status_code == 431
    assert reply.json() == {
        "message": "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"
    }
    assert reply.headers["x-request-id"] == "A"


def test_script_headers_cannot_override_ids(plain_server: Server) -> None:
    command = {"action": "response", "body": "ok", "status": 200, "headers": {"x-request-id": "from-script"}}
    client = plain_server.client()
    reply = client.post("/score", content=json.dumps(command), headers={"x-request-id": "mine"})
    assert reply.headers.get_list("x-request-id") == ["mine"]


def test_server_version_header_and_switch(plain_server: Server, factory: ServerFactory) -> None:
    assert plain_server.client().get("/").headers["x-ms-server-version"]
    quiet = factory.start("plain", env={"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"})
    assert "x-ms-server-version" not in quiet.client().get("/").headers


def test_swagger_versions_for_undecorated_script(plain_server: Server) -> None:
    client = plain_server.client()
    assert client.get("/swagger.json").json()["swagger"] == "2.0"
    for asked, expected in (("2", "2.0"), ("2.0", "2.0")):
        assert client.get("/swagger.json", params={"version": asked}).json()["swagger"] == expected
    for asked, expected in (("3", "3.0.3"), ("3.0", "3.0.3"), ("3.1", "3.1.0")):
        document = client.get("/swagger.json", params={"version": asked}).json()
        assert document["openapi"] == expected
        assert document["components"]["schemas"]["ServiceInput"] == {"type": "object", "example": {}}
    bad = client.get("/swagger.json", params={"version": "4"})
    assert bad.status_code == 404
    assert bad.json() == {"message": "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."}


def test_user_swagger_file_wins(factory: ServerFactory) -> None:
    own = {"swagger": "2.0", "info": {"title": "hand written"}}
    server = factory.start("plain", app_files={"swagger2.json": json.dumps(own)})
    assert server.client().get("/swagger.json").json() == own


def test_cors_from_aml_cors_origins(factory: ServerFactory) -> None:
    server = factory.start("plain", env={"AML_CORS_ORIGINS": "https://a.example, https://b.example"})
    client = server.client()
    allowed = client.post("/score", content="x", headers={"Origin": "https://b.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://b.example"
    foreign = client.post("/score", content="x", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 200
    assert "access-control-allow-origin" not in foreign.headers
    preflight = client.options(
        "/score", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://a.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
