"""A Redis cache of embedding vectors and the CachedEmbedder that consults it before the model.

Values are the raw little-endian float16 bytes of a unit vector under
`Keys.embeddings(namespace)`:<blake2b of the normalised text>, where the namespace is the embedder's
name (model + backend + precision), so vectors of different models never mix. The cache is an
optimisation: when Redis fails, lookups count as misses and writes are skipped.
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import redis
import structlog

from core.keys import Keys
from core.screening.embedding.model import Embedder, Vectors, l2_normalise

log = structlog.get_logger(__name__)

DEFAULT_TTL_S = 7 * 24 * 3600
STORED_DTYPE = np.dtype("<f2")


def embedded_form(text: str) -> str:
    """Return the form of a text that is hashed and embedded: NFC, outer whitespace stripped."""
    return unicodedata.normalize("NFC", text).strip()


def text_digest(text: str) -> str:
    """Return the blake2b hex digest (128 bits) of a text's normalised UTF-8 bytes."""
    return hashlib.blake2b(embedded_form(text).encode("utf-8"), digest_size=16).hexdigest()


class EmbeddingCache:
    """Float16 embedding vectors in Redis, one key per (namespace, text), with a TTL."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        keys: Keys = Keys(),
        ttl_s: int = DEFAULT_TTL_S,
        dim: int | None = None,
        on_lookup: Callable[[int, int], None] | None = None,
        retry_after_s: float = 5.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.keyspace = keys.embeddings(namespace)
        self.ttl_s = ttl_s
        self.dim = dim
        self.on_lookup = on_lookup
        self.retry_after_s = retry_after_s
        self.hits = 0
        self.misses = 0
        self._failing_since: float | None = None
        self._next_try = 0.0

    def key(self, text: str) -> str:
        """Return the Redis key of a text's vector."""
        return f"{self.keyspace}:{text_digest(text)}"

    def get_many(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32] | None]:
        """Look texts up in one MGET; a vector (float32 copy of the stored float16) or None each."""
        if not texts:
            return []
        values: list[Any] = [None] * len(texts)
        if self._available():
            try:
                values = cast(list[Any], self.client.mget([self.key(t) for t in texts]))
                self._succeeded()
            except redis.RedisError as exc:
                self._failed("read", exc)
        vectors = [self._decode(value) for value in values]
        hits = sum(vector is not None for vector in vectors)
        self.hits += hits
        self.misses += len(texts) - hits
        if self.on_lookup is not None:
            self.on_lookup(hits, len(texts) - hits)
        return vectors

    def put_many(self, texts: Sequence[str], vectors: npt.NDArray[Any]) -> None:
        """Store vectors as float16 bytes with SET EX, all in one pipelined round trip."""
        if len(texts) != len(vectors):
            raise ValueError("put_many needs one vector per text")
        if not texts or not self._available():
            return
        stored = np.asarray(vectors).astype(STORED_DTYPE)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for text, vector in zip(texts, stored, strict=True):
                    pipe.set(self.key(text), vector.tobytes(), ex=self.ttl_s)
                pipe.execute()
            self._succeeded()
        except redis.RedisError as exc:
            self._failed("write", exc)

    def _decode(self, value: Any) -> npt.NDArray[np.float32] | None:
        """Turn stored bytes into a float32 vector; anything malformed is a miss."""
        if not isinstance(value, bytes) or not value or len(value) % STORED_DTYPE.itemsize:
            return None
        vector = np.frombuffer(value, dtype=STORED_DTYPE).astype(np.float32)
        return None if self.dim is not None and vector.shape != (self.dim,) else vector

    def _available(self) -> bool:
        """Whether to call Redis now: after a failure, wait retry_after_s so an outage costs no
        timeout per batch."""
        return self._failing_since is None or time.monotonic() >= self._next_try

    def _failed(self, operation: str, exc: redis.RedisError) -> None:
        """Record a Redis failure; log only the first of an incident."""
        now = time.monotonic()
        self._next_try = now + self.retry_after_s
        if self._failing_since is None:
            self._failing_since = now
            log.warning(
                "embedding_cache.unavailable",
                operation=operation,
                namespace=self.namespace,
                error=repr(exc),
            )

    def _succeeded(self) -> None:
        """Close an incident, if one is open, with one log line."""
        if self._failing_since is not None:
            log.info(
                "embedding_cache.recovered",
                namespace=self.namespace,
                outage_s=round(time.monotonic() - self._failing_since, 1),
            )
            self._failing_since = None


class CachedEmbedder:
    """An Embedder that serves vectors from an EmbeddingCache and encodes only the misses.

    Every vector it returns has been through float16 and renormalised, whether it came from the
    cache or from the model, so a decision does not depend on the state of the cache.
    """

    def __init__(self, embedder: Embedder, cache: EmbeddingCache) -> None:
        if cache.namespace != embedder.name:
            raise ValueError(
                f"cache namespace {cache.namespace!r} is not the embedder's {embedder.name!r}"
            )
        self.embedder = embedder
        self.cache = cache
        self.name = embedder.name
        self.dim = embedder.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (normalised as in the cache key), each distinct text at most once."""
        normalised = [embedded_form(text) for text in texts]
        unique = list(dict.fromkeys(normalised))
        found = self.cache.get_many(unique)
        by_text = {
            text: vector
            for text, vector in zip(unique, found, strict=True)
            if vector is not None and vector.shape == (self.dim,)
        }
        missing = [text for text in unique if text not in by_text]
        if missing:
            fresh = self.embedder.encode(missing).astype(STORED_DTYPE)
            self.cache.put_many(missing, fresh)
            by_text.update(zip(missing, fresh.astype(np.float32), strict=True))
        if not normalised:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack([by_text[text] for text in normalised]))
