"""The OpenAPI document of the v1 API, generated from the same pydantic models the code uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from flask import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.archive.records import (
    DecisionPage,
    DecisionQuery,
    Review,
    ReviewRequest,
    UserHistoryReport,
)
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
_ARCHIVE_ERRORS = ("401", "429", "503")


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


def _path_parameters(platform: dict[str, Any], second: str) -> list[dict[str, Any]]:
    """The platform and one more string path parameter."""
    return [
        {"name": "platform", "in": "path", "required": True, "schema": platform},
        {"name": second, "in": "path", "required": True, "schema": {"type": "string"}},
    ]


def _query_parameters() -> list[dict[str, Any]]:
    """The query parameters of GET /v1/decisions, from the model that validates them."""
    schema = DecisionQuery.model_json_schema(ref_template="#/components/schemas/{model}")
    cursor = {"type": "string", "description": "next_cursor of the previous page"}
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": cursor if name == "cursor" else field,
        }
        for name, field in schema["properties"].items()
    ]


def _archive_paths(defs: dict[str, Any]) -> dict[str, Any]:
    """The archive's operations: search decisions, a user's history, a moderator review."""
    not_found = {
        "description": "unknown platform, event or user",
        "content": _json_content(ErrorResponse),
    }
    return {
        "/v1/decisions": {
            "get": {
                "summary": "Archived decisions, newest first, keyset-paginated (at most 500)",
                "parameters": _query_parameters(),
                "responses": {
                    "200": {"description": "a page", "content": _json_content(DecisionPage)},
                    "422": {"description": _ERRORS["422"], "content": _json_content(ErrorResponse)},
                    **_errors(*_ARCHIVE_ERRORS),
                },
            }
        },
        "/v1/users/{platform}/{user_id}": {
            "get": {
                "summary": "A user's history: counts by category and route over 24 h, 7 d and "
                "all time, latest decisions, reviews, posting rate",
                "parameters": _path_parameters(defs["Platform"], "user_id"),
                "responses": {
                    "200": {"description": "history", "content": _json_content(UserHistoryReport)},
                    "404": not_found,
                    **_errors(*_ARCHIVE_ERRORS),
                },
            }
        },
        "/v1/events/{platform}/{event_id}/review": {
            "post": {
                "summary": "Record a moderator's verdict; the text becomes a live labelled "
                "example on every screening worker",
                "parameters": _path_parameters(defs["Platform"], "event_id"),
                "requestBody": {"required": True, "content": _json_content(ReviewRequest)},
                "responses": {
                    "201": {"description": "the review", "content": _json_content(Review)},
                    "404": not_found,
                    "409": {
                        "description": "the event has no decision (queued, not archived yet, or "
                        "dead-lettered)",
                        "content": _json_content(ErrorResponse),
                    },
                    **_errors("400", "413", "415", "422", *_ARCHIVE_ERRORS),
                },
            }
        },
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
        DecisionPage,
        UserHistoryReport,
        ReviewRequest,
        Review,
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
            **_archive_paths(schemas["$defs"]),
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
