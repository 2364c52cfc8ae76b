"""ScriptRunner: EVALSHA with a fallback to EVAL, error replies, dead connections, and calls
made while one is in flight, which share its next round trip."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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


# Busy for 300 ms when asked, so that calls made meanwhile queue behind it.
SLOW_ECHO = """
if ARGV[1] == 'slow' then
  local start = redis.call('TIME')
  repeat
    local now = redis.call('TIME')
  until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 300000
end
if ARGV[1] == 'fail' then return redis.error_reply('nope') end
return {KEYS[1], ARGV[1]}
"""


def _wait_for_queue(run: ScriptRunner, length: int) -> None:
    """Wait until `length` calls queue behind the one in flight."""
    for _ in range(500):
        if len(run._queue) == length:
            return
        time.sleep(0.01)
    raise AssertionError(f"{len(run._queue)} calls queued, not {length}")


def test_calls_made_while_one_is_in_flight_share_one_round_trip_and_get_their_own_replies(
    redis_client: redis.Redis,
) -> None:
    run = ScriptRunner(redis_client, SLOW_ECHO)
    with ThreadPoolExecutor(max_workers=21) as pool:
        slow = pool.submit(run, ["first"], ["slow"])
        _wait_for_queue_start(run)
        calls = {i: pool.submit(run, [f"k{i}"], ["fail" if i == 5 else str(i)]) for i in range(20)}
        _wait_for_queue(run, 20)
        assert slow.result() == [b"first", b"slow"]
        for i, future in calls.items():
            if i == 5:  # an error reply is its own call's alone
                with pytest.raises(redis.ResponseError, match="nope"):
                    future.result()
            else:
                assert future.result() == [f"k{i}".encode(), str(i).encode()]
    # One connection served all 21 calls: the 20 queued ones went in one pipelined write.
    assert len(run._idle) == 1
    assert run(["after"], ["x"]) == [b"after", b"x"]


def _wait_for_queue_start(run: ScriptRunner) -> None:
    """Wait until a call is in flight."""
    for _ in range(500):
        if run._busy:
            return
        time.sleep(0.01)
    raise AssertionError("no call went out")


GREENLETS = """
from gevent import monkey; monkey.patch_all()
import sys, gevent, redis
from core.stream.lua import ScriptRunner
run = ScriptRunner(redis.Redis.from_url(sys.argv[1]), sys.argv[2])
slow = gevent.spawn(run, ["first"], ["slow"])
gevent.sleep(0.1)
queued = [gevent.spawn(run, [f"k{i}"], [str(i)]) for i in range(3)]
gevent.sleep(0.01)
assert len(run._queue) == 3, len(run._queue)
gevent.kill(queued[0])  # its caller is gone: the calls behind it still go
gevent.joinall([slow, *queued[1:]], raise_error=True)
print(slow.value, [g.value for g in queued[1:]], run(["after"], ["x"]))
"""


def test_a_caller_killed_while_queued_leaves_the_calls_behind_it_answered(
    redis_url: str,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", GREENLETS, redis_url, SLOW_ECHO],
        capture_output=True, text=True, check=True, timeout=15,
    )  # fmt: skip
    assert out.stdout.strip() == (
        "[b'first', b'slow'] [[b'k1', b'1'], [b'k2', b'2']] [b'after', b'x']"
    )


def test_a_child_forked_while_a_call_is_in_flight_runs_its_own_calls(
    redis_client: redis.Redis,
) -> None:
    run = ScriptRunner(redis_client, SLOW_ECHO)
    assert run(["warm"], ["x"]) == [b"warm", b"x"]  # an idle connection the child must not use
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(run, ["first"], ["slow"])
        _wait_for_queue_start(run)
        pid = os.fork()
        if pid == 0:  # the child: its parent's round trip is no call of its own to wait for
            signal.alarm(10)
            os._exit(0 if run(["child"], ["x"]) == [b"child", b"x"] else 1)
        _, status = os.waitpid(pid, 0)
        assert slow.result() == [b"first", b"slow"]
    assert os.waitstatus_to_exitcode(status) == 0
