"""The labels stream: moderators' verdicts on their way to every screening worker.

The web app publishes each review's text and label here once the review is committed; every
screening worker reads the entries after the last one it applied (a plain XREAD: each worker
sees every entry, unlike a consumer group) and adds them to its live examples. A worker that
starts rebuilds from the archive and reads on from the stream's last id at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from core.errors import StoreUnavailable
from core.keys import Keys
from core.stream.connection import Client
from core.stream.entries import text

# Workers read from where they were, and rebuild from the archive when they start, so the
# stream needs only the recent past; it is capped rather than grown forever.
MAX_LABELS = 10_000


@dataclass(frozen=True, slots=True)
class Label:
    """A reviewed text and its verdict, as carried on the labels stream."""

    tenant: str
    example_id: str
    label: str
    text: str


class LabelStream:
    """Publish labels, and read those after a position."""

    def __init__(self, client: Client, keys: Keys = Keys()) -> None:
        self.client = client
        self.keys = keys

    def publish(self, label: Label) -> str:
        """Append a label; returns its stream id."""
        fields: dict[Any, Any] = {
            "tenant": label.tenant,
            "example_id": label.example_id,
            "label": label.label,
            "text": label.text,
        }
        try:
            added: Any = self.client.xadd(
                self.keys.labels_stream, fields, maxlen=MAX_LABELS, approximate=True
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not publish a label: {exc}") from exc
        return text(added)

    def last_id(self) -> str:
        """The id of the newest label ("0-0" when there is none): read on from here."""
        try:
            newest: Any = self.client.xrevrange(self.keys.labels_stream, count=1)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the labels stream: {exc}") from exc
        return text(newest[0][0]) if newest else "0-0"

    def after(self, position: str, count: int = 1000) -> tuple[list[Label], str]:
        """Labels after `position`, oldest first, and the position to read on from."""
        try:
            reply: Any = self.client.xread({self.keys.labels_stream: position}, count=count)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"could not read the labels stream: {exc}") from exc
        found: list[Label] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                get = {text(k): text(v) for k, v in fields.items()}
                found.append(Label(get["tenant"], get["example_id"], get["label"], get["text"]))
                position = text(entry_id)
        return found, position
