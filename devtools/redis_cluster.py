"""A real Redis Cluster of redis-server processes on free ports, for tests and `make run`.

Each node is a `RedisServer` started with `--cluster-enabled yes`; `redis-cli --cluster create`
then assigns the 16384 slots evenly to the masters (and, with replicas, gives each master its
replicas). Nothing here is a fake: the client sees MOVED, CROSSSLOT and failover as in
production.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from devtools.redis_server import RedisServer, free_port
from devtools.supervisor import Program

# A cluster node also listens on its port + 10000 (the cluster bus), so its port is at most this.
BUS_OFFSET = 10_000
MAX_NODE_PORT = 65_535 - BUS_OFFSET


def free_node_port() -> int:
    """A free port whose cluster-bus port (+10000) is free as well."""
    while True:
        port = free_port()
        if port > MAX_NODE_PORT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port


class ClusterNode(RedisServer):
    """One redis-server in cluster mode (its own nodes.conf in its data directory)."""

    def __init__(
        self,
        data_dir: Path,
        node_timeout_ms: int,
        port: int | None = None,
        appendonly: bool = False,
    ) -> None:
        super().__init__(data_dir, port=port or free_node_port(), appendonly=appendonly)
        self.node_timeout_ms = node_timeout_ms

    def command(self) -> list[str]:
        """The server's command line, in cluster mode."""
        return [
            *super().command(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A replica's first sync starts at once, not after the default 5 s wait for more.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip


class RedisCluster:
    """`masters` masters (each with `replicas` replicas) on 127.0.0.1, data under `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        masters: int = 3,
        replicas: int = 0,
        node_timeout_ms: int = 2000,
        *,
        first_port: int | None = None,
        appendonly: bool = False,
    ) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed; see scripts/ensure-tool.sh")
        self.cli = cli
        self.masters = masters
        self.replicas = replicas
        count = masters * (1 + replicas)
        self.nodes = [
            ClusterNode(
                data_dir / f"node{i}",
                node_timeout_ms,
                None if first_port is None else first_port + i,
                appendonly,
            )
            for i in range(count)
        ]

    @property
    def addresses(self) -> str:
        """The nodes as REDIS_CLUSTER_NODES takes them: host:port,host:port,..."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start every node, create the cluster and wait until every slot is served."""
        for node in self.nodes:
            node.start()
        self.create(timeout_s)

    def create(self, timeout_s: float = 30.0) -> None:
        """Join the running nodes into a cluster (slots split evenly over the masters)."""
        subprocess.run(
            [
                self.cli, "--cluster", "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas", str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )  # fmt: skip
        self.wait_healthy(timeout_s)
        self.wait_replicas_synced(timeout_s)

    def programs(self) -> list[Program]:
        """The nodes as supervised programs (`make run CLUSTER=1`). The last is ready once the
        cluster serves every slot: created on the first run; on later runs the nodes find
        each other again through their nodes.conf."""
        programs = []
        for i, node in enumerate(self.nodes):
            node.data_dir.mkdir(parents=True, exist_ok=True)
            last = i == len(self.nodes) - 1
            ready = self._formed if last else node.answers
            programs.append(Program(f"redis-cluster-{i}", node.command(), ready=ready))
        return programs

    def _formed(self) -> bool:
        """Whether every node answers and the cluster is ok, creating it when no slot is
        assigned yet."""
        if not all(node.answers() for node in self.nodes):
            return False
        if "cluster_slots_assigned:0" in _cluster_info(self.nodes[0].port):
            self.create()
        return self._state_ok(self.nodes[0])

    def wait_replicas_synced(self, timeout_s: float = 30.0) -> None:
        """Wait until every live replica has its master's data (a replica that never synced
        refuses to take over)."""
        deadline = time.monotonic() + timeout_s
        for node in self.live_nodes():
            client = redis.Redis(port=node.port, socket_timeout=1)
            try:
                while True:
                    info = client.info("replication")
                    if info["role"] == "master" or info.get("master_link_status") == "up":
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the replica on {node.port} did not sync")
                    time.sleep(0.1)
            finally:
                client.close()

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Wait until every live node says the cluster is ok (all slots served)."""
        deadline = time.monotonic() + timeout_s
        while not all(self._state_ok(node) for node in self.live_nodes()):
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not become healthy")
            time.sleep(0.1)

    def live_nodes(self) -> list[ClusterNode]:
        """The nodes whose process is running."""
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    @staticmethod
    def _state_ok(node: ClusterNode) -> bool:
        """Whether one node reports cluster_state:ok."""
        try:
            return "cluster_state:ok" in _cluster_info(node.port)
        except redis.RedisError:
            return False

    def flush(self) -> None:
        """Empty every master (replicas follow), keeping the cluster's slots and nodes."""
        for node in self.live_nodes():
            client = redis.Redis(port=node.port, socket_timeout=5)
            try:
                if client.info("replication")["role"] == "master":
                    client.flushall()
                    client.script_flush()
            finally:
                client.close()

    def master_of_slot(self, slot: int) -> ClusterNode:
        """The node serving `slot` as master now."""
        for node in self.live_nodes():
            try:
                ranges = _ask(node.port, "CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            for start, end, master, *_ in ranges:
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no live node serves slot {slot}")

    def wait_failover(self, slot: int, dead: ClusterNode, timeout_s: float = 30.0) -> ClusterNode:
        """Wait until a node other than `dead` serves `slot` as master and the cluster is ok;
        that node (the promoted replica)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                master = self.master_of_slot(slot)
                if master is not dead:
                    self.wait_healthy(max(0.1, deadline - time.monotonic()))
                    return master
            except LookupError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replica took over slot {slot}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def _ask(port: int, *command: str) -> Any:
    """One command to the node on `port`, and its reply."""
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py
    finally:
        client.close()


def _cluster_info(port: int) -> str:
    """CLUSTER INFO of the node on `port`."""
    info = _ask(port, "CLUSTER", "INFO")
    return info.decode() if isinstance(info, bytes) else str(info)
