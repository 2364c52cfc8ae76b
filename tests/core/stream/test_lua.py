"""ScriptRunner: EVALSHA with a fallback to EVAL, error replies, and dead connections."""

from __future__ import annotations

import pytest
import redis

from core.stream.lua import ScriptRunner
from devtools.redis_server import RedisServer

ECHO = "return {KEYS[1], ARGV[1]}"


def test_runs_the_script_and_survives_a_script_flush(redis_client: redis.Redis) -> None:
    run = ScriptRunner(redis_client, ECHO)
    assert run(["k"], ["v"]) == [b"k", b"v"]
    redis_client.script_flush()
    assert run(["k2"], [2]) == [b"k2", b"2"]  # NOSCRIPT, then EVAL loads it again


def test_error_replies_are_raised_and_the_connection_is_kept(redis_client: redis.Redis) -> None:
    run = ScriptRunner(redis_client, "return redis.error_reply('nope')")
    with pytest.raises(redis.ResponseError, match="nope"):
        run([], [])
    assert len(run._idle) == 1  # an error reply does not spoil the connection


def test_a_connection_closed_by_a_redis_restart_is_replaced(own_redis: RedisServer) -> None:
    client = redis.Redis.from_url(own_redis.url)
    run = ScriptRunner(client, ECHO)
    assert run(["a"], ["1"]) == [b"a", b"1"]
    own_redis.kill()
    with pytest.raises(redis.ConnectionError):
        run(["a"], ["2"])
    own_redis.start()
    assert run(["a"], ["3"]) == [b"a", b"3"]
