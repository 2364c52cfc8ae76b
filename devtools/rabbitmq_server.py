"""A real RabbitMQ node on ports of our choosing, for tests and `make run RABBITMQ=1`.

The node is Debian's `rabbitmq-server`, run as the calling user with everything of its own in
one directory: its configuration, data, logs, Erlang cookie (HOME) and port mapper (epmd on a
port of its own), so several nodes on one host never meet, and stopping one leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from kombu.connection import Connection

from devtools.redis_server import free_port
from devtools.supervisor import Program

# Debian installs the programs that run as the calling user here (/usr/sbin has wrappers that
# switch to the rabbitmq user).
PROGRAM_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/sbin")


def _program(name: str) -> str:
    """The path of one of RabbitMQ's programs."""
    for directory in PROGRAM_DIRS:
        path = Path(directory) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; see scripts/ensure-tool.sh")
    return found


def _epmd() -> str:
    """The path of Erlang's port mapper."""
    return shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"


class RabbitServer:
    """One RabbitMQ node bound to 127.0.0.1, its files in a directory of the caller's."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.server = _program("rabbitmq-server")
        self.data_dir = data_dir
        # A node of a fixed port (make run) keeps its name, data and port mapper across runs.
        self.port = port or free_port()
        self.dist_port = self.port + 1 if port else free_port()
        self.epmd_port = self.port + 2 if port else free_port()
        self.node = f"rabbit-{self.port}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The amqp:// URL of this node (the guest user, from this host only)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        """What this node's programs (server and rabbitmqctl alike) add to the environment."""
        base = self.data_dir
        return {
            "HOME": str(base),  # the Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        }

    def programs(self) -> list[Program]:
        """The port mapper and the node as supervised programs, in their start order.

        Supervised, epmd runs in the foreground and the node does not start one of its own
        (which would daemonize and outlive the supervisor).
        """
        self._write_config()
        epmd = [_epmd(), "-port", str(self.epmd_port), "-address", "127.0.0.1"]
        node_env = {**self.env(), "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false"}
        return [
            Program("epmd", epmd, self.env(), ready=self._epmd_answers),
            Program(
                "rabbitmq", [self.server], node_env, ready=self.answers,
                log=self.data_dir / "server.log",
            ),
        ]  # fmt: skip

    def _epmd_answers(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.epmd_port)) == 0

    def _write_config(self) -> None:
        base = self.data_dir
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "advanced.config").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            # A small disk is still a disk to test on; the default alarm is at 50 MB already.
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = warning\n"
        )

    def answers(self) -> bool:
        """Whether the node accepts an AMQP connection now."""
        connection = Connection(self.url, connect_timeout=1)
        try:
            connection.connect()
            return True
        except OSError:
            return False
        finally:
            connection.release()

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the node and wait until it takes AMQP connections."""
        self._write_config()
        log = (self.data_dir / "server.log").open("wb")
        # Own session: the whole node (beam, epmd) is stopped as one process group.
        self.process = subprocess.Popen(
            [self.server],
            env={**os.environ, **self.env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                out = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"rabbitmq-server did not start:\n{out}")
            time.sleep(0.25)

    def ctl(self, *args: str, timeout_s: float = 60.0) -> str:
        """The output of `rabbitmqctl -q ARGS` against this node."""
        result = subprocess.run(
            [_program("rabbitmqctl"), "-q", "-n", self.node, *args],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        return result.stdout

    def queue_types(self) -> dict[str, str]:
        """Each queue's type (classic, quorum, stream), as the node reports it."""
        lines = self.ctl("list_queues", "name", "type", "--no-table-headers").splitlines()
        return dict(line.split("\t")[:2] for line in lines if "\t" in line)

    def stop(self) -> None:
        """Stop the node and its port mapper (the node's whole process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._stop_epmd()
        self.process = None

    def _stop_epmd(self) -> None:
        # The node's own epmd daemonizes out of its process group; ask it on its port to go.
        subprocess.run(
            [_epmd(), "-port", str(self.epmd_port), "-kill"],
            env={**os.environ, **self.env()},
            capture_output=True,
            timeout=10,
            check=False,
        )
