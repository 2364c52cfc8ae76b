"""The archive's part of the v1 contract: query parameters, review bodies, and what is returned."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from core.models import Category, Decision, EventType, Platform

MAX_PAGE = 500


def _no_nul(value: str) -> str:
    """Text stored in PostgreSQL cannot hold NUL characters."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_nul)
]


class Cursor(BaseModel):
    """Where a page of decisions ended: the last row's sort key."""

    accepted_at: datetime
    platform: str
    event_id: str

    def encode(self) -> str:
        """The opaque form handed to clients as next_cursor."""
        raw = orjson.dumps([self.accepted_at.isoformat(), self.platform, self.event_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Read a cursor made by encode(); ValueError when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            at, platform, event_id = orjson.loads(raw)
            _no_nul(platform + event_id)
            return cls(accepted_at=datetime.fromisoformat(at), platform=platform, event_id=event_id)
        except Exception as exc:  # any malformed cursor is the same client error
            raise ValueError("is not a cursor returned by this API") from exc


class DecisionQuery(BaseModel):
    """The filters of GET /v1/decisions, from its query string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: Platform | None = None
    user_id: Identifier | None = None
    channel_id: Identifier | None = None
    category: Category | None = None
    route: Literal["high", "low"] | None = None
    outcome: Literal["high", "low", "dlq"] | None = None
    since: datetime | None = Field(None, description="accepted at or after (RFC 3339)")
    until: datetime | None = Field(None, description="accepted before (RFC 3339)")
    reviewed: bool | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    # Clients send the opaque string they were given, never a Cursor's fields.
    cursor: Annotated[
        Cursor | None,
        WithJsonSchema({"type": "string", "description": "next_cursor of the previous page"}),
    ] = None

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A time filter needs an offset: a naive time would be read in the server's zone."""
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, such as 2026-01-31T12:00:00Z")
        return value

    @field_validator("cursor", mode="before")
    @classmethod
    def _decode_cursor(cls, value: Any) -> Any:
        """Read the opaque cursor string."""
        return Cursor.decode(value) if isinstance(value, str) else value


class ReviewRequest(BaseModel):
    """Body of POST /v1/events/<platform>/<event_id>/review."""

    model_config = ConfigDict(extra="forbid")

    label: Category
    reviewer: Annotated[
        str,
        StringConstraints(min_length=1, max_length=128, strip_whitespace=True),
        AfterValidator(_no_nul),
    ]
    note: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_no_nul)] | None = None


class Review(BaseModel):
    """One moderator verdict as recorded; an overturn disagrees with the machine's category."""

    id: int
    platform: Platform
    event_id: str
    label: Category
    reviewer: str
    note: str | None = None
    machine_category: Category
    overturn: bool
    created_at: datetime


class ArchivedEvent(BaseModel):
    """An archived event with its outcome: the receipt when decided, the reason when not."""

    platform: Platform
    event_id: str
    stream_id: str
    outcome: Literal["high", "low", "dlq"]
    user_id: str
    channel_id: str | None = None
    event_type: EventType
    content: str
    timestamp: datetime
    metadata: dict[str, Any] | None = None
    accepted_at: datetime
    decided_at: datetime | None = None
    decision: Decision | None = None
    error: str | None = None
    deliveries: int | None = None
    trace_id: str | None = None
    label: Category | None = Field(None, description="the latest review's verdict")
    reviewed_at: datetime | None = None
    overturned: bool | None = None


class DecisionPage(BaseModel):
    """A page of GET /v1/decisions, newest first; next_cursor is null on the last page."""

    decisions: list[ArchivedEvent]
    next_cursor: str | None = None


class WindowCounts(BaseModel):
    """How a user's events ended within one window."""

    total: int
    by_category: dict[Category, int]
    by_route: dict[Literal["high", "low"], int]
    dead_lettered: int


class PostingRate(BaseModel):
    """The user's live counters (Redis), the same numbers the history rules read."""

    posts_last_minute: int
    high_risk_last_24h: int


class UserHistoryReport(BaseModel):
    """GET /v1/users/<platform>/<user_id>: what the archive and the live counters know of a user."""

    platform: Platform
    user_id: str
    first_seen: datetime
    last_seen: datetime
    counts: dict[Literal["24h", "7d", "all"], WindowCounts]
    recent: list[ArchivedEvent]
    reviews: list[Review]
    posting_rate: PostingRate
