"""The Swagger 2.0 / OpenAPI 3.0 / 3.1 documents served at ``GET /swagger.json``.

Same document shape as Azure ML's server (docs/scoring.md, "Routes"), so that clients generated
from it keep working: paths ``<prefix>/``, ``<prefix>/score``, ``<prefix>/swagger.json``, schemas
``ServiceInput``, ``ServiceOutput``, ``ErrorResponse``, Bearer API-key security. Input and output
schemas come from the inference-schema decorators; undecorated scripts get ``{"type": "object"}``.
User-supplied ``swagger*.json`` files in the app root win.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION_ALIASES = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
ALL_VERSIONS = ("2", "3", "3.1")

# Highest priority first, per version (docs/scoring.md, "Routes").
_USER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}

_ERROR_SCHEMA = {"type": "object", "properties": {"message": {"type": "string"}}}
_SECURITY_SCHEME = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "description": "For example: Bearer abc123",
}
_HEALTH_TEXT = "If service is up and running, this response will be returned with the content 'Healthy'"
_ERROR_TEXT = "The service failed to execute due to an error."
_SCORE_TEXT = "The service processed the input correctly and provided a result prediction, if applicable."
_INPUT_TEXT = "The input payload for executing the real-time machine learning service."


@dataclass(frozen=True)
class ServiceIdentity:
    """What the documents say about the service (``SERVICE_NAME``, ``SERVICE_VERSION``, prefix)."""

    name: str = "ML service"
    version: str = "1.0"
    path_prefix: str = ""


def build_documents(
    run: Callable[..., Any] | None, identity: ServiceIdentity, app_root: Path | None
) -> dict[str, str]:
    """Return the JSON text of every document available for ``run``, keyed ``"2"``, ``"3"``, ``"3.1"``.

    A version is missing when the decorators' samples cannot be expressed in it (swagger 2 has no
    mixed-type arrays) and no user file provides it.
    """
    input_schema, output_schema, versions = _schemas(run)
    documents: dict[str, str] = {}
    for version in ALL_VERSIONS:
        user_file = _user_document(app_root, version)
        if user_file is not None:
            documents[version] = user_file
        elif version in versions:
            builder = _swagger2 if version == "2" else _openapi3
            documents[version] = json.dumps(builder(identity, input_schema, output_schema, version))
    return documents


def _schemas(run: Callable[..., Any] | None) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    generic = {"type": "object", "example": {}}
    if run is None:
        return generic, generic, set(ALL_VERSIONS)
    from inference_schema import schema_util

    if not schema_util.is_schema_decorated(run):
        return generic, generic, set(ALL_VERSIONS)
    versions = {VERSION_ALIASES.get(v, v) for v in schema_util.get_supported_versions(run)}
    return schema_util.get_input_schema(run), schema_util.get_output_schema(run), versions


def _user_document(app_root: Path | None, version: str) -> str | None:
    if app_root is None:
        return None
    for name in _USER_FILES[version]:
        candidate = app_root / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def _info(identity: ServiceIdentity) -> dict[str, str]:
    return {
        "title": identity.name,
        "description": f"API specification for the Azure Machine Learning service {identity.name}",
        "version": identity.version,
    }


def _paths(
    identity: ServiceIdentity,
    refs: str,
    responses: Callable[..., dict[str, Any]],
    input_spec: dict[str, Any],
    version_spec: dict[str, Any],
) -> dict[str, Any]:
    prefix = identity.path_prefix.rstrip("/")
    error = responses(_ERROR_TEXT, {"$ref": f"{refs}/ErrorResponse"}, "application/json")
    return {
        f"{prefix}/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "description": "Simple health check endpoint to ensure the service is up at any given point.",
                "responses": {
                    "200": responses(_HEALTH_TEXT, {"type": "string"}, "text/plain", example="Healthy"),
                    "default": error,
                },
            }
        },
        f"{prefix}/score": {
            "post": {
                "operationId": "RunMLService",
                "description": "Run web service's model and get the prediction output",
                "security": [{"Bearer": []}],
                **input_spec,
                "responses": {
                    "200": responses(_SCORE_TEXT, {"$ref": f"{refs}/ServiceOutput"}, "application/json"),
                    "default": error,
                },
            }
        },
        f"{prefix}/swagger.json": {
            "get": {
                "operationId": "GetSwaggerSpec",
                "description": "Get the Swagger specification.",
                **version_spec,
                "responses": {
                    "200": responses("The Swagger specification.", {"type": "string"}, "text/plain"),
                    "default": error,
                },
            }
        },
    }


def _swagger2(
    identity: ServiceIdentity, input_schema: dict[str, Any], output_schema: dict[str, Any], _version: str
) -> dict[str, Any]:
    def responses(
        description: str, schema: dict[str, Any], _media: str, example: Any = None
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {"description": description, "schema": schema}
        if example is not None:
            reply["examples"] = {"application/json": example}
        return reply

    paths = _paths(
        identity,
        "#/definitions",
        responses,
        {
            "parameters": [
                {
                    "name": "serviceInputPayload",
                    "in": "body",
                    "description": _INPUT_TEXT,
                    "schema": {"$ref": "#/definitions/ServiceInput"},
                }
            ]
        },
        {
            "parameters": [
                {"name": "version", "in": "query", "required": False, "type": "integer", "enum": [2, 3]}
            ]
        },
    )
    return {
        "swagger": "2.0",
        "info": _info(identity),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": dict(_SECURITY_SCHEME)},
        "paths": paths,
        "definitions": {
            "ServiceInput": copy.deepcopy(input_schema),
            "ServiceOutput": copy.deepcopy(output_schema),
            "ErrorResponse": copy.deepcopy(_ERROR_SCHEMA),
        },
    }


def _openapi3(
    identity: ServiceIdentity, input_schema: dict[str, Any], output_schema: dict[str, Any], version: str
) -> dict[str, Any]:
    def responses(
        description: str, schema: dict[str, Any], media: str, example: Any = None
    ) -> dict[str, Any]:
        body = dict(schema)
        if example is not None:
            body["example"] = example
        return {"description": description, "content": {media: {"schema": body}}}

    paths = _paths(
        identity,
        "#/components/schemas",
        responses,
        {
            "requestBody": {
                "description": _INPUT_TEXT,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}},
            }
        },
        {
            "parameters": [
                {
                    "name": "version",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "enum": [2, 3]},
                }
            ]
        },
    )
    return {
        "openapi": "3.1.0" if version == "3.1" else "3.0.3",
        "info": _info(identity),
        "security": [{"Bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {
                "ServiceInput": copy.deepcopy(input_schema),
                "ServiceOutput": copy.deepcopy(output_schema),
                "ErrorResponse": copy.deepcopy(_ERROR_SCHEMA),
            },
            "securitySchemes": {"Bearer": dict(_SECURITY_SCHEME)},
        },
    }
