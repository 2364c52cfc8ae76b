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


def error_body(
    code: str, message: str, request_id: str | None, errors: list[FieldError] | None = None
) -> bytes:
    """The JSON body every error answer shares."""
    body = ErrorResponse(error=code, message=message, request_id=request_id, errors=errors)
    return body.model_dump_json(exclude_none=True).encode()


def error_response(
    status: int, code: str, message: str, errors: list[FieldError] | None = None
) -> Response:
    """A Flask response with the JSON body every error answer shares."""
    body = error_body(code, message, g.get("request_id"), errors)
    return Response(body, status=status, mimetype="application/json")


def answer_for(exc: Exception, retry_after_s: int) -> ApiError:
    """What to answer for an exception a view raised: an ApiError as it is, 503 with
    Retry-After for an unreachable event store or archive, 500 for anything else (logged
    with its context: this is the process boundary)."""
    if isinstance(exc, ApiError):
        return exc
    retry = {"Retry-After": str(retry_after_s)}
    if isinstance(exc, StoreUnavailable):
        log.warning("store_unavailable", error=str(exc))
        return ApiError(503, "store_unavailable", "the event store is unreachable", headers=retry)
    if isinstance(exc, ArchiveUnavailable):
        log.warning("archive_unavailable", error=str(exc)[:300])
        return ApiError(503, "archive_unavailable", "the archive is unreachable", headers=retry)
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return ApiError(500, "internal_error", "unexpected error; see the server log")


def register_error_handlers(app: Flask, count_rejection: Any) -> None:
    """Answer ApiError, werkzeug errors, an unreachable Redis and anything else with JSON."""

    @app.errorhandler(Exception)
    def _failure(exc: Exception) -> Response:
        answer = answer_for(exc, app.config["RETRY_AFTER_S"])
        count_rejection(answer.code)
        response = error_response(answer.status, answer.code, answer.message, answer.errors)
        response.headers.update(answer.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        if status == 413:
            code = "payload_too_large"
        count_rejection(code)
        return error_response(status, code, exc.description or exc.name)
