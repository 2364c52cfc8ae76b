"""The pydantic models of the v1 contract: events, request and response bodies, decisions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

MAX_CONTENT_CHARS = 10_000
MAX_METADATA_BYTES = 16 * 1024
# Deep enough for any real metadata, and far below the nesting the JSON parsers (orjson's 254
# levels on output, pydantic's 200 on input) refuse: what the front door accepts, workers read.
MAX_METADATA_DEPTH = 32
# JSON integers outside the 64-bit range reach Python as floats, silently losing digits, so
# metadata refuses numbers this large in magnitude (send such values as strings).
MAX_METADATA_NUMBER = 2**63
MAX_BATCH_EVENTS = 500
MAX_FUTURE_SKEW = timedelta(minutes=5)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


DEFAULT_TENANT = "default"
TENANT_PATTERN = r"^[A-Za-z0-9._\-]{1,64}$"


class Platform(StrEnum):
    """Where an event was posted."""

    DISCORD = "discord"
    SLACK = "slack"
    WEB_CHAT = "web_chat"
    TELEGRAM = "telegram"
    TWITTER = "twitter"
    REDDIT = "reddit"


class EventType(StrEnum):
    """What kind of user content an event carries."""

    MESSAGE = "message"
    COMMENT = "comment"
    POST = "post"
    DIRECT_MESSAGE = "direct_message"
    REPLY = "reply"
    EDIT = "edit"


class Category(StrEnum):
    """Risk categories a decision can name; LOW_RISK means no harm found."""

    LOW_RISK = "LOW_RISK"
    SPAM = "SPAM"
    TOXIC = "TOXIC"
    TARGETED_HARASSMENT = "TARGETED_HARASSMENT"
    HATE_SPEECH = "HATE_SPEECH"
    VIOLENCE = "VIOLENCE"
    SEXUAL = "SEXUAL"


class Action(StrEnum):
    """What a decision recommends the platform do with the event."""

    ALLOW = "allow"
    REVIEW = "review"
    HIDE = "hide"
    BLOCK = "block"


# The column order of every per-category score array (rules, head, neighbour votes, blend).
CATEGORIES: tuple[Category, ...] = tuple(Category)
HARMFUL_CATEGORIES: tuple[Category, ...] = tuple(c for c in Category if c is not Category.LOW_RISK)


def _parse_timestamp(value: Any) -> datetime:
    """Accept only an RFC 3339 string with an offset; return it in UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string such as 2026-01-31T12:00:00Z")
    match = _RFC3339.match(value)
    if not match:
        raise ValueError("must be RFC 3339 with a UTC offset, such as 2026-01-31T12:00:00+02:00")
    if value[10] == "t" or value[-1] == "z":  # RFC 3339 allows lower case; Python does not
        value = value.upper()
    fraction = match.group(1)
    if fraction and len(fraction) > 7:  # Python parses at most 6 digits; RFC 3339 allows more
        value = value[: match.start(1) + 7] + value[match.end(1) :]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"is not a real date and time ({exc})") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None


def _not_in_future(value: datetime) -> datetime:
    """Reject timestamps more than the allowed skew ahead of the server clock."""
    if value - datetime.now(UTC) > MAX_FUTURE_SKEW:
        raise ValueError("is more than 5 minutes in the future")
    return value


def _not_blank(value: str) -> str:
    """Reject text made only of white space."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _check_metadata_values(value: dict[str, Any]) -> None:
    """Refuse metadata nested deeper than MAX_METADATA_DEPTH or holding numbers past 64 bits."""
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"is nested more than {MAX_METADATA_DEPTH} levels deep")
        children: list[Any] = []
        for container in level:
            children.extend(container.values() if isinstance(container, dict) else container)
        for child in children:
            if isinstance(child, float) and not -MAX_METADATA_NUMBER < child < MAX_METADATA_NUMBER:
                raise ValueError(
                    "holds a number beyond 64 bits, which JSON parsers do not keep exactly; "
                    "send it as a string"
                )
        level = [child for child in children if isinstance(child, (dict, list))]


def _canonical_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Bound metadata to 16 KiB and sort its keys so equal content serialises equally."""
    if value is None:
        return None
    _check_metadata_values(value)
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise ValueError(f"is not JSON-serialisable ({exc})") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValueError(f"is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    result: dict[str, Any] = orjson.loads(encoded)
    return result


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    AfterValidator(_not_in_future),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Event(BaseModel):
    """One user message, comment or post sent for screening."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]
    platform: Platform
    event_type: EventType
    user_id: Identifier
    channel_id: Identifier | None = None
    content: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_CONTENT_CHARS),
        AfterValidator(_not_blank),
    ]
    timestamp: Timestamp
    metadata: Annotated[dict[str, Any] | None, AfterValidator(_canonical_metadata)] = None

    def payload(self) -> bytes:
        """Serialise to the canonical JSON that is queued and hashed for idempotency."""
        return self.model_dump_json(exclude_none=True).encode()


class FieldError(BaseModel):
    """One invalid field: where, why, and pydantic's error type."""

    field: str
    message: str
    type: str


class ErrorResponse(BaseModel):
    """Body of every 4xx/5xx answer."""

    error: str = Field(description="machine-readable code, such as validation_failed")
    message: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class EventAccepted(BaseModel):
    """Answer to a single event: accepted (202) or a retry of one already queued (200)."""

    status: Literal["accepted", "duplicate"]
    event_id: str
    platform: Platform
    stream_id: str


class BatchRequest(BaseModel):
    """Envelope of a batch; each item is validated on its own, so one bad item spoils nothing."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_BATCH_EVENTS),
        WithJsonSchema(
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Event"},
                "minItems": 1,
                "maxItems": MAX_BATCH_EVENTS,
            }
        ),
    ]


class BatchItemResult(BaseModel):
    """Outcome of one item of a batch, at the item's index."""

    index: int
    status: Literal["accepted", "duplicate", "conflict", "invalid"]
    event_id: str | None = None
    stream_id: str | None = None
    errors: list[FieldError] | None = None


class BatchResponse(BaseModel):
    """Answer to a batch: one result per item, in order, plus counts by status."""

    results: list[BatchItemResult]
    counts: dict[str, int]


class RuleFlag(BaseModel):
    """A rule that fired on an event, with the text that made it fire."""

    id: str
    category: Category
    weight: float
    evidence: list[str]


class Neighbor(BaseModel):
    """A labelled reference example close to the event in embedding space."""

    id: str
    label: Category
    similarity: float


class Decision(BaseModel):
    """The receipt of one screened event: scores, verdict, evidence and versions."""

    event_id: str | None = None
    platform: Platform | None = None
    tenant: str = Field(DEFAULT_TENANT, description="the tenant whose API key sent the event")
    risk_score: float = Field(ge=0, le=1)
    category: Category
    category_scores: dict[Category, float]
    route: Literal["high", "low"]
    flags: list[RuleFlag]
    similar: list[Neighbor]
    heuristic_score: float = Field(ge=0, le=1)
    embedding_score: float = Field(ge=0, le=1)
    signals: dict[str, float] = Field(
        default_factory=dict,
        description="each signal's contribution to the harmful log-odds: rules, head, "
        "neighbours, profanity_model, examples (runtime-added) and bias; they add up to "
        "logit(risk_score)",
    )
    model: str
    version: str = Field(description="hash of the rules, thresholds and reference set in use")
    ingested_at: datetime | None = None
    screened_at: datetime
    action: Action = Field(
        Action.ALLOW, description="recommended action, from per-category thresholds"
    )


class EventState(BaseModel):
    """What the lookup API knows of an event: queued, screened with its decision, or
    dead-lettered with the reason (never the event's content)."""

    platform: Platform
    event_id: str
    tenant: str = DEFAULT_TENANT
    state: Literal["queued", "screened", "dead_lettered"]
    stream_id: str
    ingested_at: datetime
    decision: Decision | None = None
    reason: str | None = Field(None, description="why screening gave up (dead_lettered only)")


class ScreenTexts(BaseModel):
    """Body of POST /v1/screen with bare texts (the other form is one Event)."""

    model_config = ConfigDict(extra="forbid")

    texts: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTENT_CHARS)]],
        Field(min_length=1, max_length=MAX_BATCH_EVENTS),
    ]


class ScreenResponse(BaseModel):
    """Answer of POST /v1/screen: one decision per text, in order."""

    decisions: list[Decision]
