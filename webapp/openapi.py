"""The OpenAPI document of the v1 API, built from the route table and the pydantic models it names.

Nothing here lists a route or a model: each operation comes from a webapp.routes.Route, and the
components are the schemas of the models those routes name (with the models they nest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import orjson
from flask import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.models import ErrorResponse
from webapp.routes import Answer, Route

REF = "#/components/schemas/{model}"
# The errors every route of a kind answers with, and what each means.
ERRORS = {
    400: "malformed JSON, invalid UTF-8 or invalid gzip",
    401: "missing or invalid API key",
    413: "body (or its decompressed form) too large",
    415: "not application/json in UTF-8, or an unsupported Content-Encoding",
    422: "invalid fields, each named in `errors`",
    429: "rate limit of this API key passed; see Retry-After",
    502: "the screening worker failed on this input",
    503: "backlog over its limit or Redis unreachable; see Retry-After",
    504: "no screening worker answered in SCREEN_SYNC_TIMEOUT_S",
}
_KEYED = (401, 429)
_BODY = (400, 413, 415, 422)
_PARAMETER = re.compile(r"<(?:[a-z]+:)?(\w+)>")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    """A JSON reference to a model's schema among the components."""
    return {"$ref": REF.format(model=model.__name__)}


def _content(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    """An OpenAPI content map of a JSON body that is any one of `models`."""
    schema = _ref(models[0]) if len(models) == 1 else {"oneOf": [_ref(m) for m in models]}
    return {"application/json": {"schema": schema}}


def _answer(answer: Answer) -> dict[str, Any]:
    """An OpenAPI response object."""
    if answer.model is None:
        return {"description": answer.description}
    return {"description": answer.description, "content": _content([answer.model])}


def error_statuses(route: Route) -> list[int]:
    """The error statuses of a route: its own, and those of its kind (key, body, query)."""
    statuses = set(route.errors)
    if not route.public:
        statuses.update(_KEYED)
    if route.body:
        statuses.update(_BODY)
    if route.query is not None:
        statuses.add(422)
    return sorted(statuses - set(route.answers))


def _responses(route: Route) -> dict[str, Any]:
    """A route's answers, then its error answers with the ErrorResponse body."""
    responses = {str(status): _answer(answer) for status, answer in route.answers.items()}
    for status in error_statuses(route):
        responses[str(status)] = _answer(Answer(ERRORS[status], ErrorResponse))
    return responses


def _parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """The path parameters, in the rule's order, then the query model's fields."""
    found = []
    for name in _PARAMETER.findall(route.path):
        kind = route.parameters.get(name, str)
        schema = {"type": "string"} if kind is str else schemas[kind.__name__]
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    if route.query is not None:
        query = route.query.model_json_schema(ref_template=REF)
        required = set(query.get("required", ()))
        found.extend(
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in query["properties"].items()
        )
    return found


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    operation: dict[str, Any] = {"operationId": route.endpoint, "summary": route.summary}
    if route.public:
        operation["security"] = []
    parameters = _parameters(route, schemas)
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        operation["requestBody"] = {"required": True, "content": _content(route.body)}
    operation["responses"] = _responses(route)
    return operation


def _models(routes: Iterable[Route]) -> list[type[BaseModel]]:
    """Every model a route's body or answers name, once each, in the table's order."""
    found: dict[type[BaseModel], None] = {}
    for route in routes:
        found.update(dict.fromkeys(route.body))
        found.update({a.model: None for a in route.answers.values() if a.model is not None})
        if error_statuses(route):
            found[ErrorResponse] = None
    return list(found)


def _path(rule: str) -> str:
    """The OpenAPI form of a Flask rule: `<path:user_id>` becomes `{user_id}`."""
    return _PARAMETER.sub(r"{\1}", rule)


def document(routes: Sequence[Route]) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of these routes."""
    _, defs = models_json_schema([(m, "validation") for m in _models(routes)], ref_template=REF)
    schemas = defs["$defs"]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(_path(route.path), {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Content-risk screening API", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": paths,
    }


class OpenApiViews:
    """The view serving the document of these routes, built on first request."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = routes

    @cached_property
    def body(self) -> bytes:
        """The document, serialised once."""
        return orjson.dumps(document(self.routes))

    def serve_document(self) -> Response:
        """Serve the OpenAPI document."""
        return Response(self.body, mimetype="application/json")
