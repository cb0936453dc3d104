"""How run() is called for each entry-script form and how its result is answered.

docs/scoring.md, "Entry scripts", describes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.conftest import Server, ServerFactory

RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL = "An unexpected internal error occurred. Check the logs for more info."
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def schema_server(factory: ServerFactory) -> Server:
    """A server running the inference-schema decorated script."""
    return factory.start("schema")


@pytest.fixture(scope="module")
def raw_server(factory: ServerFactory) -> Server:
    """A server running the @rawhttp script."""
    return factory.start("raw")


# -- undecorated run(data) --------------------------------------------------------------------
def test_plain_post_passes_the_body_as_text(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content='{"data": [1, 2]}')
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-ms-run-function-failed"] == "False"
    assert float(reply.headers["x-ms-run-fn-exec-ms"]) >= 0
    assert reply.json()["got"] == '{"data": [1, 2]}'


def test_plain_get_turns_the_query_into_a_json_string(plain_server: Server) -> None:
    reply = plain_server.client().get("/score", params=[("a", "1"), ("b", "text"), ("a", "[2]")])
    assert json.loads(reply.json()["got"]) == {"a": [1, [2]], "b": "text"}


def test_plain_run_receives_request_headers(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content="x", headers={"x-probe": "42"})
    assert reply.json()["headers"]["X-Probe"] == "42"


def test_non_utf8_body_is_400(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content=b"\xff\xfe")
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("Input cannot be decoded as UTF-8: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("none", b"{}"), ("string", b'"plain string"')],
)
def test_plain_return_values_are_json_dumped(plain_server: Server, value: str, expected: bytes) -> None:
    reply = plain_server.client().post("/score", content=json.dumps({"action": "return", "value": value}))
    assert reply.status_code == 200
    assert reply.content == expected


def test_run_exception_is_500_with_flag(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content=json.dumps({"action": "raise"}))
    assert reply.status_code == 500
    assert reply.json() == {"message": RUN_FAILED}
    assert reply.headers["x-ms-run-function-failed"] == "True"
    assert "run() exploded on purpose" in plain_server.log()


def test_numpy_result_fails_with_standard_encoding(plain_server: Server) -> None:
    reply = plain_server.client().post("/score", content=json.dumps({"action": "return", "value": "numpy"}))
    assert reply.status_code == 500
    assert reply.json() == {"message": INTERNAL}
    assert reply.headers["x-ms-run-function-failed"] == "False"


def test_numpy_and_pandas_results_encode_with_numpy_switch(
    factory: ServerFactory, modelport_only: None
) -> None:
    server = factory.start("plain", args=("--json_encoding", "numpy"))
    client = server.client()
    reply = client.post("/score", content=json.dumps({"action": "return", "value": "numpy"}))
    assert reply.status_code == 200
    assert reply.json() == [0, 1, 2]
    frame = client.post("/score", content=json.dumps({"action": "return", "value": "pandas"}))
    assert frame.json() == [{"a": 1, "b": 0.5}, {"a": 2, "b": 1.5}]


def test_aml_response_is_sent_as_is(plain_server: Server) -> None:
    command = {"action": "response", "body": "teapot", "status": 418, "headers": {"X-Extra": "1"}}
    reply = plain_server.client().post("/score", content=json.dumps(command))
    assert reply.status_code == 418
    assert reply.text == "teapot"
    assert reply.headers["x-extra"] == "1"
    assert reply.headers["x-ms-run-function-failed"] == "False"


def test_aml_response_5xx_sets_run_function_failed(plain_server: Server) -> None:
    command = {"action": "response", "body": "nope", "status": 503}
    reply = plain_server.client().post("/score", content=json.dumps(command))
    assert reply.status_code == 503
    assert reply.headers["x-ms-run-function-failed"] == "True"


# -- @input_schema ------------------------------------------------------------------------------
def test_schema_post_converts_inputs_and_applies_defaults(schema_server: Server) -> None:
    client = schema_server.client()
    reply = client.post("/score", json={"data": [[1, 2, 3, 4]], "extra": "ignored"})
    assert reply.status_code == 200
    assert reply.json() == [10.0]
    assert client.post("/score", json={"data": [[1, 2, 3, 4]], "scale": 2.0}).json() == [20.0]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"data": [[1, 2, 3, 4]]}', "text/plain", 415, "Expects Content-Type to be application/json"),
        (b"", "application/json", 400, "POST body is empty. Expecting a JSON dictionary."),
        (b"[1, 2]", "application/json", 400, "POST body should be a JSON dictionary."),
        (b'{"scale": 1.0}', "application/json", 400, "A value is not provided for the 'data' parameter."),
    ],
)
def test_schema_input_errors(
    schema_server: Server, body: bytes, content_type: str, status: int, message: str
) -> None:
    reply = schema_server.client().post("/score", content=body, headers={"content-type": content_type})
    assert reply.status_code == status
    assert reply.json() == {"message": message}


def test_schema_bad_json_is_400(schema_server: Server) -> None:
    headers = {"content-type": "application/json"}
    reply = schema_server.client().post("/score", content=b"{nope", headers=headers)
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("POST body could not be decoded as JSON: ")


def test_schema_conversion_error_is_a_run_failure(schema_server: Server) -> None:
    reply = schema_server.client().post("/score", json={"data": [[1, 2, 3]]})
    assert reply.status_code == 500
    assert reply.headers["x-ms-run-function-failed"] == "True"


def test_schema_vendor_json_content_type_is_accepted(schema_server: Server) -> None:
    headers = {"content-type": "application/vnd.test+json; charset=utf-8"}
    reply = schema_server.client().post("/score", content=b'{"data": [[1, 1, 1, 1]]}', headers=headers)
    assert reply.json() == [4.0]


def test_schema_swagger_documents(schema_server: Server) -> None:
    client = schema_server.client()
    v2 = client.get("/swagger.json", params={"version": "2"}).json()
    service_input = v2["definitions"]["ServiceInput"]
    assert service_input["properties"]["data"]["format"] == "numpy.ndarray"
    assert service_input["example"]["data"] == [[5.1, 3.5, 1.4, 0.2]]
    v3 = client.get("/swagger.json", params={"version": "3"}).json()
    assert v3["components"]["schemas"]["ServiceInput"] == service_input
    assert v3["paths"]["/score"]["post"]["operationId"] == "RunMLService"


# -- @rawhttp -----------------------------------------------------------------------------------
def test_raw_run_sees_the_request(raw_server: Server) -> None:
    reply = raw_server.client().post(
        "/score", params={"k": ["1", "2"], "json": "1"}, json={"x": 1}, headers={"X-Probe": "p"}
    )
    assert reply.status_code == 200
    assert reply.headers["x-custom"] == "yes"
    echo = reply.json()
    assert echo["method"] == "POST"
    assert echo["args"] == {"k": ["1", "2"], "json": ["1"]}
    assert echo["full_path"] == "/score?k=1&k=2&json=1"
    assert echo["json"] == {"x": 1}
    assert echo["probe"] == "p"


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_raw_run_is_called_for_get_and_options(raw_server: Server, method: str) -> None:
    reply = raw_server.client().request(method, "/score")
    assert reply.status_code == 200
    assert reply.json()["method"] == method
    assert reply.json()["full_path"] == "/score?"


def test_raw_run_reads_multipart_files_and_form(raw_server: Server) -> None:
    reply = raw_server.client().post(
        "/score", data={"field": "value"}, files={"upload": ("a.csv", b"1,2\n", "text/csv")}
    )
    echo = reply.json()
    assert echo["form"] == {"field": "value"}
    assert echo["files"] == {"upload": ["a.csv", "1,2\n"]}


def test_raw_run_get_json_on_non_json_is_a_run_failure(raw_server: Server) -> None:
    reply = raw_server.client().post("/score", params={"json": "1"}, content=b"not json")
    assert reply.status_code == 500
    assert reply.headers["x-ms-run-function-failed"] == "True"


def test_raw_status_is_kept(raw_server: Server) -> None:
    reply = raw_server.client().get("/score", params={"status": "502"})
    assert reply.status_code == 502
    assert reply.headers["x-ms-run-function-failed"] == "True"


# -- a real model ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_iris_model_from_azureml_model_dir(factory: ServerFactory, iris_model_dir: Path) -> None:
    server = factory.start("iris", args=("--model_dir", str(iris_model_dir / "iris" / "1")))
    reply = server.client().post("/score", json={"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    assert reply.status_code == 200
    assert reply.json() == [0, 2]


def test_plain_run_gets_form_encoded_bodies(plain_server: Server, modelport_only: None) -> None:
    # The reference passes "" here (Flask consumed the body as a form); curl -d sends this type.
    reply = plain_server.client().post("/score", content=b"a=1&b=2", headers={"content-type": FORM})
    assert reply.json()["got"] == "a=1&b=2"


def test_driver_module_run_is_called(factory: ServerFactory) -> None:
    script = """
        import real_score as driver_module

        def init():
            pass

        def run(data):
            return "outer"
    """
    inner = "def run(data):\n    return 'inner'\n"
    server = factory.start(None, script_text=script, app_files={"real_score.py": inner})
    assert server.client().post("/score", content="x").json() == "inner"


def test_source_directory_is_importable(factory: ServerFactory) -> None:
    script = """
        import helper

        def init():
            pass

        def run(data):
            return helper.VALUE
    """
    server = factory.start(
        None,
        script_text=script,
        app_files={"src/helper.py": "VALUE = 42\n"},
        env={"AZUREML_SOURCE_DIRECTORY": "src"},
    )
    assert server.client().post("/score", content="x").json() == 42
