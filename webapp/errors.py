"""HTTP errors of the API and the handlers that turn every failure into a JSON body."""

from __future__ import annotations

from typing import Any, TypeVar

import structlog
from flask import Flask, Response, g
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from core.archive.errors import ArchiveUnavailable
from core.errors import StoreUnavailable
from core.models import ErrorResponse, FieldError

log = structlog.get_logger(__name__)

Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    """Base of the web package's errors: an HTTP status, a code and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Flatten pydantic's errors into one FieldError per invalid field."""
    found = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in err["loc"])
        field = f"{prefix}.{path}" if prefix and path else (prefix or path or "body")
        message = err["msg"].removeprefix("Value error, ")
        found.append(FieldError(field=field, message=message, type=err["type"]))
    return found


def parse(model: type[Model], data: Any, message: str) -> Model:
    """`data` validated as `model`, or a 422 with `message` and one entry per invalid field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", message, errors=field_errors(exc)) from None


def error_response(
    status: int, code: str, message: str, errors: list[FieldError] | None = None
) -> Response:
    """Build the JSON body every error answer shares."""
    body = ErrorResponse(error=code, message=message, request_id=g.get("request_id"), errors=errors)
    return Response(
        body.model_dump_json(exclude_none=True), status=status, mimetype="application/json"
    )


def register_error_handlers(app: Flask, count_rejection: Any) -> None:
    """Answer ApiError, werkzeug errors, an unreachable Redis and anything else with JSON."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        count_rejection(exc.code)
        response = error_response(exc.status, exc.code, exc.message, exc.errors)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable) -> Response:
        count_rejection("store_unavailable")
        log.warning("store_unavailable", error=str(exc))
        response = error_response(503, "store_unavailable", "the event store is unreachable")
        response.headers["Retry-After"] = str(app.config["RETRY_AFTER_S"])
        return response

    @app.errorhandler(ArchiveUnavailable)
    def _archive_unavailable(exc: ArchiveUnavailable) -> Response:
        count_rejection("archive_unavailable")
        log.warning("archive_unavailable", error=str(exc)[:300])
        response = error_response(503, "archive_unavailable", "the archive is unreachable")
        response.headers["Retry-After"] = str(app.config["RETRY_AFTER_S"])
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        if status == 413:
            code = "payload_too_large"
        count_rejection(code)
        return error_response(status, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The process boundary: anything unforeseen is logged with context and counted.
        count_rejection("internal_error")
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return error_response(500, "internal_error", "unexpected error; see the server log")
