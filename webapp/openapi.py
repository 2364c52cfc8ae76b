"""The OpenAPI document of the v1 API, generated from the same pydantic models the code uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from flask import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.models import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Event,
    EventAccepted,
    EventState,
    ScreenResponse,
    ScreenTexts,
)

bp = Blueprint("openapi", __name__)

_ERRORS = {
    "400": "malformed JSON, invalid UTF-8 or invalid gzip",
    "401": "missing or invalid API key",
    "413": "body (or its decompressed form) too large",
    "415": "not application/json in UTF-8, or an unsupported Content-Encoding",
    "422": "invalid fields, each named in `errors`",
    "429": "rate limit of this API key passed; see Retry-After",
    "502": "the screening worker failed on this input",
    "503": "backlog over its limit or Redis unreachable; see Retry-After",
    "504": "no screening worker answered in SCREEN_SYNC_TIMEOUT_S",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    """A JSON reference to a model's schema."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_content(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI content map holding one JSON schema."""
    return {"application/json": {"schema": _ref(model)}}


def _errors(*codes: str) -> dict[str, Any]:
    """Error responses of an operation, all with the ErrorResponse body."""
    return {
        code: {"description": _ERRORS[code], "content": _json_content(ErrorResponse)}
        for code in codes
    }


@cache
def document() -> dict[str, Any]:
    """Build the OpenAPI 3.1 document once per process."""
    models: list[type[BaseModel]] = [
        Event,
        BatchRequest,
        BatchResponse,
        EventAccepted,
        EventState,
        ErrorResponse,
        ScreenTexts,
        ScreenResponse,
    ]
    _, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    write_errors = _errors("400", "401", "413", "415", "422", "429", "503")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Content-risk screening API", "version": "1"},
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Queue one event for screening",
                    "requestBody": {"required": True, "content": _json_content(Event)},
                    "responses": {
                        "202": {
                            "description": "accepted and durably queued",
                            "content": _json_content(EventAccepted),
                        },
                        "200": {
                            "description": "a retry of an event already queued",
                            "content": _json_content(EventAccepted),
                        },
                        "409": {
                            "description": "same identity, different content",
                            "content": _json_content(ErrorResponse),
                        },
                        **write_errors,
                    },
                }
            },
            "/v1/events/batch": {
                "post": {
                    "summary": "Queue up to 500 events; one result per item, in order",
                    "requestBody": {"required": True, "content": _json_content(BatchRequest)},
                    "responses": {
                        "200": {
                            "description": "one result per item",
                            "content": _json_content(BatchResponse),
                        },
                        **write_errors,
                    },
                }
            },
            "/v1/events/{platform}/{event_id}": {
                "get": {
                    "summary": "The state of an event",
                    "parameters": [
                        {
                            "name": "platform",
                            "in": "path",
                            "required": True,
                            "schema": schemas["$defs"]["Platform"],
                        },
                        {
                            "name": "event_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {"description": "known event", "content": _json_content(EventState)},
                        "404": {
                            "description": "unknown event",
                            "content": _json_content(ErrorResponse),
                        },
                        **_errors("401", "429", "503"),
                    },
                }
            },
            "/v1/screen": {
                "post": {
                    "summary": "Screen texts (or one event) now; nothing is queued or stored",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [_ref(ScreenTexts), _ref(Event)]}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one decision per text, in order",
                            "content": _json_content(ScreenResponse),
                        },
                        **_errors("400", "401", "413", "415", "422", "429", "502", "503", "504"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: Redis reachable, backlog under its limit",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
    }


@bp.get("/openapi.json")
def serve_document() -> Response:
    """Serve the OpenAPI document."""
    return Response(orjson.dumps(document()), mimetype="application/json")
