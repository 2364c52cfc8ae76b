"""The cross-event signal: the same content from many distinct senders within a window.

`RepeatMatcher` fires on the count its caller supplies; `RedisRepeatCounter` keeps the counts
(the window is REPEAT_WINDOW_S, given to the counter when the engine is assembled).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis

from core.errors import ConfigError, StoreUnavailable
from core.keys import Keys
from core.screening.rules.matchers import Matcher, Span, TextView
from core.screening.rules.spec import RepeatRule


class RepeatMatcher(Matcher):
    """The same normalised content from many distinct senders within the counter's window."""

    on_normalized = False

    def __init__(self, spec: RepeatRule) -> None:
        super().__init__(spec)
        self.min_senders = spec.min_senders
        self.min_length = spec.min_length

    def find(self, text: TextView) -> list[Span]:
        """Fire when the caller's repeat count reaches the threshold."""
        if text.repeat_count < self.min_senders:
            return []
        return [(0, 0, f"{text.repeat_count} distinct senders")]


class RepeatCounter(Protocol):
    """Counts, per content key, the distinct senders seen within a time window."""

    def observe(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """Record (content_key, sender) pairs and return, for each, the number of distinct
        senders seen for that content within the window."""
        ...

    def peek(self, content_keys: Sequence[str]) -> list[int]:
        """The distinct senders seen for each content key within the window, recording nothing."""
        ...


class RedisRepeatCounter:
    """RepeatCounter on Redis HyperLogLogs, one pipelined round trip per call."""

    # Why HyperLogLog and not a set: a spam wave can come from thousands of accounts, and a set
    # per content would grow with every one of them, while an HLL stays under 12 KB (a few
    # hundred bytes while sparse). At the small counts the threshold needs (about 5) Redis's
    # sparse HLL is exact unless two senders share a register (~0.06% at 5 senders), which at
    # worst delays the signal by one sender.
    # The window is two fixed buckets: each observation goes into the bucket of now // window_s,
    # and PFCOUNT of the current and previous bucket (a union) counts the senders of the last
    # one to two windows. Buckets expire after two windows, so nothing needs cleaning up.

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = Keys().repeat,
        window_s: int = 600,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s < 1:
            raise ConfigError(f"repeat window must be at least 1 second, not {window_s}")
        self._client = client
        self._prefix = prefix
        self._window_s = window_s
        self._clock = clock

    def _key(self, content_key: str, bucket: int) -> str:
        """Name the HLL of one content in one bucket; the hash tag keeps both buckets of a
        content in one Redis Cluster slot, as a multi-key PFCOUNT requires."""
        return f"{self._prefix}:{{{content_key}}}:{bucket}"

    def observe(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """Record (content_key, sender) pairs and return the distinct senders of each so far."""
        if not items:
            return []
        bucket = int(self._clock() // self._window_s)
        pipe = self._client.pipeline(transaction=False)
        for content_key, sender in items:
            current = self._key(content_key, bucket)
            pipe.pfadd(current, sender)
            pipe.expire(current, 2 * self._window_s)
            pipe.pfcount(current, self._key(content_key, bucket - 1))
        try:
            replies = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"repeat counter: {exc}") from exc
        return [int(count) for count in replies[2::3]]

    def peek(self, content_keys: Sequence[str]) -> list[int]:
        """The distinct senders of each content so far, without recording a sender."""
        if not content_keys:
            return []
        bucket = int(self._clock() // self._window_s)
        pipe = self._client.pipeline(transaction=False)
        for content_key in content_keys:
            pipe.pfcount(self._key(content_key, bucket), self._key(content_key, bucket - 1))
        try:
            return [int(count) for count in pipe.execute()]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"repeat counter: {exc}") from exc
