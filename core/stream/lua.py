"""The one way this service runs Lua: EVALSHA on its own pooled connections, EVAL as fallback.

Every script (ingest, decide, dead-letter, rate limit) runs through a ScriptRunner.

redis-py 8 spends about 100 µs of CPU on every command here (its retry wrapper, connection pool
and observability hooks), against about 50 µs for sending the packed command and reading the
reply on a connection directly. The ingest script runs once per request, so that difference is
a fifth of the front door's cost per event. A ScriptRunner keeps its own small stack of
redis-py connections (so authentication, TLS, database selection and timeouts are redis-py's)
and uses only their public send/read calls.

Calls that arrive while one is waiting for Redis (concurrent greenlets of a gevent web worker)
queue, and go together as one pipelined write when it returns: one send and one read for all of
them instead of one each. Under `make bench-ingest` load the ingest script's round trip was 125
µs of the 890 µs of worker CPU of a POST /v1/events (py-spy) and 77 µs of Redis CPU; sharing
round trips made it 30 µs and 39 µs. Each call still gets its own reply, in order; a call alone
goes at once.

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
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, NoScriptError, TryAgainError

Arg = str | bytes | int | float


class _Call:
    """One caller's script call, waiting for its turn, its reply or its error."""

    __slots__ = ("args", "done", "error", "keys", "leads", "replied", "reply")

    def __init__(self, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self.keys = keys
        self.args = args
        self.done: threading.Event | None = None  # a queued call's: answered, or leads now
        self.leads = False
        self.replied = False
        self.reply: Any = None
        self.error: BaseException | None = None

    def answer(self, reply: Any = None, error: BaseException | None = None) -> None:
        """Hand the call its reply or error."""
        self.reply, self.error, self.replied = reply, error, True
        if self.done is not None:
            self.done.set()

    def result(self) -> Any:
        """The reply, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.reply


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
        self._forked()

    def _forked(self) -> None:
        """Start this process's own state: a child of a fork shares no connection, and no
        round trip of its parent's is in flight for it."""
        self._pid = os.getpid()
        self._idle.clear()
        self._lock = threading.Lock()
        self._queue: list[_Call] = []  # calls waiting for the one in flight to return
        self._busy = False  # a round trip is in flight

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script and return its reply; Redis errors propagate as redis-py's."""
        if self._cluster is not None:
            return self._cluster(keys, args)
        if self._pid != os.getpid():
            self._forked()
        call = _Call(keys, args)
        with self._lock:
            if self._busy:
                call.done = threading.Event()
                self._queue.append(call)
            else:
                self._busy = call.leads = True
        if call.done is not None:
            try:
                call.done.wait()
            except BaseException:  # killed while waiting: never leave the queue without a leader
                self._abandon(call)
                raise
            if call.replied:
                return call.result()
        # This call leads: it sends itself and every call queued behind the last round trip.
        with self._lock:
            batch, self._queue = [call, *self._queue], []
        try:
            self._send(batch)
        except BaseException as exc:
            for waiting in batch:
                if not waiting.replied:
                    waiting.answer(error=exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._hand_over()
        return call.result()

    def _hand_over(self) -> None:
        """Let the first call that queued meanwhile lead the next round trip."""
        with self._lock:
            if self._queue:
                following = self._queue.pop(0)
                following.leads = True
                assert following.done is not None  # every queued call has one
                following.done.set()
            else:
                self._busy = False

    def _abandon(self, call: _Call) -> None:
        """Take a call whose caller is gone out of the queue, or pass on its turn to lead."""
        with self._lock:
            if call in self._queue:
                self._queue.remove(call)
                return
        if call.leads and not call.replied:
            self._hand_over()

    def _send(self, batch: list[_Call]) -> None:
        """Answer every call of the batch from one round trip (two after a script flush)."""
        if self._idle:
            try:
                self._call(self._idle.pop(), batch)
                return
            except redis.ConnectionError:
                # An idle connection may have been closed by a Redis restart; a fresh one
                # decides for the calls not answered yet. A repeat is harmless: the ingest
                # script answers "duplicate".
                batch = [call for call in batch if not call.replied]
        self._call(self._pool.make_connection(), batch)

    def _call(self, conn: Any, batch: list[_Call]) -> None:
        """Run the batch on one connection, keeping it only if it is known to be healthy."""
        try:
            conn.connect()  # a no-op on a live connection; (re)connects and authenticates
            missing = self._roundtrip(conn, "EVALSHA", self._sha, batch)
            if missing:  # the script cache was flushed, or Redis restarted
                self._roundtrip(conn, "EVAL", self._source, missing)
        except BaseException:
            conn.disconnect()  # the connection's state is unknown: never reuse it
            raise
        self._release(conn)

    @staticmethod
    def _roundtrip(conn: Any, command: str, script: str, batch: list[_Call]) -> list[_Call]:
        """Send the batch's EVAL/EVALSHA in one write, answer each call from its reply, and
        return the calls Redis did not know the script for (error replies leave the
        connection usable)."""
        packed = [
            conn.pack_command(command, script, len(call.keys), *call.keys, *call.args)
            for call in batch
        ]
        # One call's chunks go as they are (a batch of events can be large); several calls'
        # are joined, so that they leave in one send.
        if len(packed) > 1:
            packed = [[b"".join(chunk for chunks in packed for chunk in chunks)]]
        conn.send_packed_command(packed[0])
        missing = []
        for call in batch:
            try:
                reply = conn.read_response()
            except NoScriptError:
                missing.append(call)
            except redis.ResponseError as exc:
                call.answer(error=exc)
            else:
                call.answer(reply)
        return missing

    def _release(self, conn: Any) -> None:
        """Keep the connection for the next call, unless enough are idle already."""
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.disconnect()


class ClusterScript:
    """One Lua script on a Redis Cluster: a ScriptRunner per master (its own connections and
    shared round trips, as on one Redis) for the master of its keys' slot, and redis-py's
    cluster client when the slot is elsewhere or away."""

    def __init__(self, cluster: RedisCluster, source: str, max_idle: int = 64) -> None:
        self._cluster = cluster
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._max_idle = max_idle
        self._runners: dict[str, ScriptRunner] = {}  # by master name

    def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script and return its reply; Redis errors propagate as redis-py's."""
        node = self._cluster.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        master = node.redis_connection if node is not None else None
        if master is None:  # not connected to that node yet: redis-py's client does it
            return self._routed(keys, args)
        runner = self._runners.get(node.name)
        if runner is None:
            runner = self._runners[node.name] = ScriptRunner(master, self._source, self._max_idle)
        try:
            return runner(keys, args)
        except (AskError, TryAgainError, ClusterDownError, redis.ConnectionError):
            # MOVED is an AskError: the slot lives elsewhere now (a reshard, a failover).
            return self._routed(keys, args)

    def _routed(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script through redis-py's cluster client (redirects, failover, retries)."""
        try:
            return self._cluster.evalsha(self._sha, len(keys), *keys, *args)
        except NoScriptError:
            return self._cluster.eval(self._source, len(keys), *keys, *args)
