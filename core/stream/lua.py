"""The one way this service runs Lua: EVALSHA on its own pooled connections, EVAL as fallback.

Every script (ingest, decide, dead-letter, rate limit) runs through a ScriptRunner.

redis-py 8 spends about 100 µs of CPU on every command here (its retry wrapper, connection pool
and observability hooks), against about 50 µs for sending the packed command and reading the
reply on a connection directly. The ingest script runs once per request, so that difference is
a fifth of the front door's cost per event. A ScriptRunner keeps its own small stack of
redis-py connections (so authentication, TLS, database selection and timeouts are redis-py's)
and uses only their public send/read calls.

On a Redis Cluster a ScriptRunner hands every call to a ClusterScript, which sends the script
the same way, on its own connections to the master the client's slot map names for the keys'
slot (Redis refuses keys of several slots with CROSSSLOT). Through RedisCluster.evalsha one
client queued 1,140 events/s one per call and 10,100 in batches of 100, on its own connections
1,580 and 14,000 (medians of 5 interleaved runs, 3 masters, 8 shards, on a loaded host where
one Redis took 2,100 and 24,700). When the slot has moved or its master is away (MOVED, ASK,
TRYAGAIN, CLUSTERDOWN, a refused connection), the call goes through redis-py's RedisCluster,
which follows redirects, reloads its slot map after a failover and retries. Each master keeps
its own script cache, so NOSCRIPT there means that master has not seen the script yet, and
EVAL loads it.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, NoScriptError, TryAgainError

Arg = str | bytes | int | float


class ScriptRunner:
    """Calls one Lua script (EVALSHA, falling back to EVAL after a script flush or restart)."""

    def __init__(self, client: redis.Redis | RedisCluster, source: str, max_idle: int = 64) -> None:
        self._cluster = (
            ClusterScript(client, source, max_idle) if isinstance(client, RedisCluster) else None
        )
        self._pool: Any = None if isinstance(client, RedisCluster) else client.connection_pool
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by SHA-1
        self._idle: deque[Any] = deque()  # redis-py connections (untyped)
        self._max_idle = max_idle

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script and return its reply; Redis errors propagate as redis-py's."""
        if self._cluster is not None:
            return self._cluster(keys, args)
        if self._idle:
            try:
                return self._call(self._idle.pop(), keys, args)
            except redis.ConnectionError:
                # An idle connection may have been closed by a Redis restart; a fresh one
                # decides. A repeat is harmless: the ingest script answers "duplicate".
                pass
        return self._call(self._pool.make_connection(), keys, args)

    def _call(self, conn: Any, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script on one connection, keeping it only if it is known to be healthy."""
        try:
            conn.connect()  # a no-op on a live connection; (re)connects and authenticates
            try:
                reply = self._roundtrip(conn, "EVALSHA", self._sha, keys, args)
            except NoScriptError:  # the script cache was flushed, or Redis restarted
                reply = self._roundtrip(conn, "EVAL", self._source, keys, args)
        except redis.ResponseError:
            self._release(conn)  # an error reply leaves the connection usable
            raise
        except BaseException:
            conn.disconnect()  # the connection's state is unknown: never reuse it
            raise
        self._release(conn)
        return reply

    @staticmethod
    def _roundtrip(
        conn: Any,
        command: str,
        script: str,
        keys: Sequence[str],
        args: Sequence[Arg],
    ) -> Any:
        """Send one EVAL/EVALSHA and read its reply."""
        conn.send_packed_command(conn.pack_command(command, script, len(keys), *keys, *args))
        return conn.read_response()

    def _release(self, conn: Any) -> None:
        """Keep the connection for the next call, unless enough are idle already."""
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.disconnect()


class ClusterScript:
    """One Lua script on a Redis Cluster: sent to the master of its keys' slot on this object's
    own connections, through redis-py's cluster client when the slot is elsewhere or away."""

    def __init__(self, cluster: RedisCluster, source: str, max_idle: int = 64) -> None:
        self._cluster = cluster
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._max_idle = max_idle
        self._pid = os.getpid()
        self._idle: dict[str, deque[Any]] = {}  # redis-py connections per master, by name

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script and return its reply; Redis errors propagate as redis-py's."""
        if self._pid != os.getpid():  # a forked child shares no connection of its parent's
            self._pid, self._idle = os.getpid(), {}
        node = self._cluster.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        master = node.redis_connection if node is not None else None
        if master is None:  # not connected to that node yet: redis-py's client does it
            return self._routed(keys, args)
        idle = self._idle.setdefault(node.name, deque())
        conn = idle.pop() if idle else master.connection_pool.make_connection()
        try:
            return self._call(conn, idle, keys, args)
        except (AskError, TryAgainError, ClusterDownError, redis.ConnectionError):
            # MOVED is an AskError: the slot lives elsewhere now (a reshard, a failover).
            return self._routed(keys, args)

    def _call(self, conn: Any, idle: deque[Any], keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script on one connection, keeping it only if it is known to be healthy."""
        try:
            conn.connect()
            try:
                reply = _send_one(conn, "EVALSHA", self._sha, keys, args)
            except NoScriptError:  # this master never ran it, or it is a promoted replica
                reply = _send_one(conn, "EVAL", self._source, keys, args)
        except redis.ResponseError:
            self._release(conn, idle)  # an error reply leaves the connection usable
            raise
        except BaseException:
            conn.disconnect()
            raise
        self._release(conn, idle)
        return reply

    def _routed(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script through redis-py's cluster client (redirects, failover, retries)."""
        try:
            return self._cluster.evalsha(self._sha, len(keys), *keys, *args)
        except NoScriptError:
            return self._cluster.eval(self._source, len(keys), *keys, *args)

    def _release(self, conn: Any, idle: deque[Any]) -> None:
        """Keep the connection for the next call to its master, unless enough are idle."""
        if len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.disconnect()


def _send_one(
    conn: Any, command: str, script: str, keys: Sequence[str], args: Sequence[Arg]
) -> Any:
    """Send one EVAL/EVALSHA on a connection and read its reply."""
    conn.send_packed_command(conn.pack_command(command, script, len(keys), *keys, *args))
    return conn.read_response()
