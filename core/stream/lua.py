"""The one way this service runs Lua: EVALSHA on its own pooled connections, EVAL as fallback.

Every script (ingest, decide, dead-letter, rate limit) runs through a ScriptRunner.

redis-py 8 spends about 100 µs of CPU on every command here (its retry wrapper, connection pool
and observability hooks), against about 50 µs for sending the packed command and reading the
reply on a connection directly. The ingest script runs once per request, so that difference is
a fifth of the front door's cost per event. A ScriptRunner keeps its own small stack of
redis-py connections (so authentication, TLS, database selection and timeouts are redis-py's)
and uses only their public send/read calls.

On a Redis Cluster the runner goes through redis-py's RedisCluster instead, which routes each
call to the master of its keys' slot (refusing keys of several slots) and follows redirects
after a failover or a reshard; each master keeps its own script cache, so NOSCRIPT there
means that master has not seen the script yet, and EVAL loads it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class ScriptRunner:
    """Calls one Lua script (EVALSHA, falling back to EVAL after a script flush or restart)."""

    def __init__(self, client: redis.Redis | RedisCluster, source: str, max_idle: int = 64) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # Redis names scripts by SHA-1
        self._idle: deque[Any] = deque()  # redis-py connections (untyped)
        self._max_idle = max_idle

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script and return its reply; Redis errors propagate as redis-py's."""
        if isinstance(self._client, RedisCluster):
            return self._call_cluster(self._client, keys, args)
        if self._idle:
            try:
                return self._call(self._idle.pop(), keys, args)
            except redis.ConnectionError:
                # An idle connection may have been closed by a Redis restart; a fresh one
                # decides. A repeat is harmless: the ingest script answers "duplicate".
                pass
        return self._call(self._client.connection_pool.make_connection(), keys, args)

    def _call_cluster(self, cluster: RedisCluster, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script on the master of its keys' slot, loading it there when it is new."""
        try:
            return cluster.evalsha(self._sha, len(keys), *keys, *args)
        except NoScriptError:  # this master never ran it, or it failed over to a fresh replica
            return cluster.eval(self._source, len(keys), *keys, *args)

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
