"""Reading request bodies: content type, gzip with a bounded output, UTF-8 and JSON."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import orjson
from gunicorn.http.errors import ParseException
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from webapp.errors import ApiError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_READ_SIZE = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def _check_content_type(environ: WSGIEnvironment) -> None:
    """Accept application/json (or a +json type) in UTF-8 only."""
    mimetype, params = parse_options_header(environ.get("CONTENT_TYPE", ""))
    mimetype = mimetype.lower()
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        shown = mimetype or "none"
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type must be application/json, not {shown}"
        )
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", f"charset must be utf-8, not {charset}")


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body of one or more members (RFC 1952), never producing more than
    `limit` bytes in all; anything after the last member that is not a member is refused."""
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=31)
            part = inflater.decompress(rest, limit + 1 - size)
            size += len(part)
            out.append(part)
            if size > limit:
                raise ApiError(
                    413, "payload_too_large", f"the decompressed body is larger than {limit} bytes"
                )
            if not inflater.eof:
                raise ApiError(400, "invalid_encoding", "the gzip body is truncated")
            rest = inflater.unused_data
            if not rest:
                return b"".join(out)
            if not rest.startswith(_GZIP_MAGIC):
                raise ApiError(
                    400, "invalid_encoding", f"{len(rest)} bytes after the gzip data are not gzip"
                )
    except zlib.error as exc:
        raise ApiError(400, "invalid_encoding", f"the body is not valid gzip: {exc}") from None


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The body as sent, at most `limit` bytes: 413 past it, 400 when its framing is broken.

    Under a server that frames the body itself (gunicorn sets `wsgi.input_terminated`, and
    decodes chunked bodies), the body is read here up to one byte past the limit: werkzeug's
    own reader stops at MAX_CONTENT_LENGTH without looking for more, so a 2 MiB chunked event
    was cut at 1 MiB and accepted (202) instead of refused.
    """
    length = get_content_length(environ)
    if length is not None and length > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    stream = (
        environ["wsgi.input"] if environ.get("wsgi.input_terminated") else get_input_stream(environ)
    )
    parts: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            part = stream.read(min(_READ_SIZE, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (ParseException, OSError, ValueError) as exc:
        # gunicorn raises its ParseException family (InvalidChunkSize, ...) for a malformed
        # chunked body, and NoMoreData (an OSError) for one that ends early.
        raise ApiError(
            400, "malformed_body", f"the request body is malformed: {type(exc).__name__}"
        ) from None
    if size > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    return b"".join(parts)


def read_json(environ: WSGIEnvironment, max_body: int, max_decompressed: int) -> Any:
    """Return the parsed JSON body of a request (its WSGI environ), or raise the 4xx that
    names what is wrong with it."""
    _check_content_type(environ)
    data = read_body(environ, max_body)
    encoding = environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding == "gzip":
        data = gunzip(data, max_decompressed)
    elif encoding not in ("identity", ""):
        raise ApiError(
            415, "unsupported_media_type", f"Content-Encoding {encoding} is not supported; use gzip"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
