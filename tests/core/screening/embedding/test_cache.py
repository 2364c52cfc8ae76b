"""The Redis embedding cache and CachedEmbedder, on a real Redis, with a counting fake model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from structlog.testing import capture_logs

from core.keys import Keys
from core.screening.embedding import Embedder, Vectors
from core.screening.embedding.cache import (
    DEFAULT_TTL_S,
    CachedEmbedder,
    EmbeddingCache,
    embedded_form,
    text_digest,
)
from devtools.redis_server import RedisServer, free_port

DIM = 8


class CountingEmbedder:
    """A deterministic fake model that records every text it is asked to encode."""

    def __init__(self, name: str = "fake-model/test-fp32") -> None:
        self.name = name
        self.dim = DIM
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Return a unit vector derived from each text's hash."""
        self.calls.append(list(texts))
        rows = [
            np.frombuffer(hashlib.sha256(text.encode()).digest()[:DIM], dtype=np.uint8)
            for text in texts
        ]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM) - 127.5
        unit: Vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
        return unit

    @property
    def encoded(self) -> list[str]:
        """Every text encoded so far, in order."""
        return [text for call in self.calls for text in call]


@pytest.fixture()
def model() -> CountingEmbedder:
    """A fresh counting fake model."""
    return CountingEmbedder()


def _cache(client: redis.Redis, model: CountingEmbedder, **kwargs: object) -> EmbeddingCache:
    """An EmbeddingCache namespaced for the fake model."""
    return EmbeddingCache(client, model.name, dim=DIM, **kwargs)  # type: ignore[arg-type]


def test_fake_model_satisfies_the_embedder_protocol(model: CountingEmbedder) -> None:
    assert isinstance(model, Embedder)
    assert isinstance(CachedEmbedder(model, EmbeddingCache(redis.Redis(), model.name)), Embedder)


def test_vectors_are_stored_as_raw_float16_bytes_under_the_namespaced_key_for_7_days(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    cache = _cache(redis_client, model)
    vectors = model.encode(["hello world"])
    cache.put_many(["hello world"], vectors)

    digest = hashlib.blake2b(b"hello world", digest_size=16).hexdigest()
    key = f"events:emb:fake-model/test-fp32:{digest}"
    assert redis_client.keys("*") == [key.encode()]
    raw = redis_client.get(key)
    assert isinstance(raw, bytes)
    assert raw == vectors[0].astype("<f2").tobytes()
    assert len(raw) == DIM * 2  # binary, not hex or JSON
    assert DEFAULT_TTL_S - 60 < redis_client.ttl(key) <= DEFAULT_TTL_S == 7 * 24 * 3600


def test_round_trip_returns_the_float16_values_and_counts_hits_and_misses(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    lookups: list[tuple[int, int]] = []
    cache = _cache(redis_client, model, on_lookup=lambda h, m: lookups.append((h, m)))
    vectors = model.encode(["a", "b"])
    cache.put_many(["a", "b"], vectors)

    found = cache.get_many(["a", "missing", "b"])
    assert found[1] is None
    assert found[0] is not None and found[2] is not None
    assert np.array_equal(found[0], vectors[0].astype(np.float16).astype(np.float32))
    assert np.array_equal(found[2], vectors[1].astype(np.float16).astype(np.float32))
    assert (cache.hits, cache.misses) == (2, 1)
    assert lookups == [(2, 1)]


def test_ttl_and_prefix_are_configurable(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    cache = _cache(redis_client, model, keys=Keys(prefix="tenant1"), ttl_s=60)
    cache.put_many(["x"], model.encode(["x"]))
    (key,) = redis_client.keys("*")
    assert isinstance(key, bytes)
    assert key.startswith(b"tenant1:emb:fake-model/test-fp32:")
    assert 0 < redis_client.ttl(key) <= 60


def test_keys_hash_the_normalised_text() -> None:
    assert embedded_form("  cafe\u0301 ") == "caf\u00e9"
    assert text_digest("  cafe\u0301 ") == text_digest("caf\u00e9")
    assert text_digest("a") != text_digest("b")


def test_a_value_of_the_wrong_size_is_a_miss(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    cache = _cache(redis_client, model)
    redis_client.set(cache.key("x"), b"\x00" * (DIM * 2 + 2))
    assert cache.get_many(["x"]) == [None]


def test_duplicates_in_a_batch_are_encoded_once_and_a_second_batch_is_all_hits(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    embedder = CachedEmbedder(model, _cache(redis_client, model))
    texts = ["spam!", "hello", "spam!", "  spam!  ", "hello"]
    first = embedder.encode(texts)
    assert model.encoded == ["spam!", "hello"]
    assert (embedder.cache.hits, embedder.cache.misses) == (0, 2)

    second = embedder.encode(texts)
    assert model.calls == [["spam!", "hello"]]  # the model was not called again
    assert (embedder.cache.hits, embedder.cache.misses) == (2, 2)
    assert np.array_equal(first, second)
    assert first.shape == (5, DIM) and first.dtype == np.float32
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[0], first[3])


def test_vectors_are_identical_whether_they_came_from_the_model_or_the_cache(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    """Fresh vectors go through float16 too, so a decision does not depend on cache state."""
    embedder = CachedEmbedder(model, _cache(redis_client, model))
    cold = embedder.encode(["one", "two", "three"])
    warm = embedder.encode(["three", "one", "two"])
    assert np.array_equal(cold, warm[[1, 2, 0]])
    assert np.allclose(np.linalg.norm(cold, axis=1), 1.0, atol=1e-6)
    # and they stay within float16 rounding of the model's own output
    assert np.abs(cold - model.encode(["one", "two", "three"])).max() < 1e-3


def test_empty_input_returns_an_empty_matrix_without_calling_the_model(
    redis_client: redis.Redis, model: CountingEmbedder
) -> None:
    embedder = CachedEmbedder(model, _cache(redis_client, model))
    assert embedder.encode([]).shape == (0, DIM)
    assert model.calls == []


def test_a_cache_of_another_model_namespace_is_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="namespace"):
        CachedEmbedder(CountingEmbedder(), EmbeddingCache(redis_client, "other-model/onnx-int8"))


def test_redis_down_still_encodes_counts_misses_and_logs_once(model: CountingEmbedder) -> None:
    # No client-side retries: redis-py's default policy spends ~3 s on each refused call.
    dead = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.2)
    embedder = CachedEmbedder(model, _cache(dead, model, retry_after_s=0.0))
    with capture_logs() as logs:
        first = embedder.encode(["a", "b"])
        second = embedder.encode(["a", "c"])
    assert first.shape == second.shape == (2, DIM)
    assert np.array_equal(first[0], second[0])
    assert model.encoded == ["a", "b", "a", "c"]
    assert (embedder.cache.hits, embedder.cache.misses) == (0, 4)
    assert [entry["event"] for entry in logs] == ["embedding_cache.unavailable"]


def test_after_an_outage_the_cache_recovers_and_says_so_once(
    own_redis: RedisServer, model: CountingEmbedder
) -> None:
    client = redis.Redis.from_url(own_redis.url, retry=Retry(NoBackoff(), 0), socket_timeout=0.5)
    embedder = CachedEmbedder(model, _cache(client, model, retry_after_s=0.0))
    own_redis.stop()
    with capture_logs() as logs:
        embedder.encode(["a"])
        own_redis.start()
        embedder.encode(["a"])  # a miss: nothing could be stored during the outage
        embedder.encode(["a"])  # now a hit
    assert [entry["event"] for entry in logs] == [
        "embedding_cache.unavailable",
        "embedding_cache.recovered",
    ]
    assert model.encoded == ["a", "a"]
    assert (embedder.cache.hits, embedder.cache.misses) == (1, 2)
    client.close()


def test_during_an_outage_redis_is_not_asked_again_until_retry_after(
    model: CountingEmbedder,
) -> None:
    calls: list[str] = []

    class CountingDeadRedis(redis.Redis):
        """A client whose every command fails, counting the attempts."""

        def execute_command(self, *args: object, **options: object) -> object:
            calls.append(str(args[0]))
            raise redis.ConnectionError("down")

    cache = _cache(CountingDeadRedis(), model, retry_after_s=3600)
    embedder = CachedEmbedder(model, cache)
    for _ in range(3):
        embedder.encode(["a"])
    assert calls == ["MGET"]  # the write and the later reads were skipped
    assert cache.misses == 3
