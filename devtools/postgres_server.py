"""A real PostgreSQL server on a port of our choosing, for tests, benchmarks and `make run`.

The cluster is made by `initdb` the first time (data in a directory of the caller's) and reused
afterwards. The server process is the `postgres` program itself, run as a child of the caller
rather than detached by `pg_ctl start`: `pg_ctl` puts the postmaster in a session of its own, where
the death of the caller's whole process group would not reach it. As a child it is told to shut
down fast (SIGINT, what `pg_ctl stop -m fast` sends) when the caller stops it, and by the kernel
(a parent-death signal) when the caller dies without a chance to, so no PostgreSQL outlives the
`make run` or test session that started it. `make run` supervises it as one of its programs
(`program()`); tests and benchmarks start and stop it themselves (`start()`, `stop()`).

PostgreSQL refuses to run as root; run as root, the cluster belongs to the `postgres` system user
that Debian's package creates, and its programs run as that user.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from devtools.redis_server import free_port
from devtools.supervisor import Program, die_with_parent

SUPERUSER = "postgres"
DATABASE = "screening"


def bin_dir() -> Path:
    """Where PostgreSQL's server programs are: on PATH, or under Debian's versioned directory."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not versions:
        raise RuntimeError(
            "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql); "
            "or set DATABASE_URL to a PostgreSQL you run"
        )
    return Path(versions[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster in `data_dir`, served on 127.0.0.1:`port` (TCP only)."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable
        self.bin_dir = bin_dir()
        # initdb and postgres refuse to run as root: use Debian's postgres user then.
        self.user = SUPERUSER if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's `screening` database."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log_path(self) -> Path:
        """The server's log, inside its data directory (written once initdb has filled it)."""
        return self.data_dir / "server.log"

    def _dsn(self, database: str) -> str:
        """A libpq connection string for one database."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def _own(self, path: Path) -> None:
        """Hand a directory to the user the server runs as."""
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, args: list[str]) -> None:
        """Run a PostgreSQL program to completion, as the server's user."""
        done = subprocess.run(
            args, user=self.user, capture_output=True, text=True, check=False, cwd="/"
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed:\n{done.stdout}{done.stderr}")

    def initialise(self) -> bool:
        """Create the cluster unless it exists; returns whether it was created now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._own(self.data_dir)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata", str(self.data_dir),
                "--username", SUPERUSER,
                "--auth", "trust",  # only 127.0.0.1 can connect; see start()
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-instructions",
            ]
        )  # fmt: skip
        return True

    def command(self) -> list[str]:
        """The postgres command line: this cluster, this port, TCP on 127.0.0.1 only."""
        args = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "logging_collector=off",
        ]  # fmt: skip
        if not self.durable:  # tests and benchmarks' throwaway clusters: no fsync
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            args += ["-c", "full_page_writes=off"]
        return args

    def answers(self) -> bool:
        """Whether the server accepts connections now."""
        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=2, autocommit=True):
                return True
        except psycopg.OperationalError:
            return False

    def program(self, prepare: Callable[[], None] = lambda: None) -> Program:
        """The server as a supervised program: ready once it answers, has the `screening`
        database and `prepare()` (a migration, say) has run; stopped fast, as in stop()."""

        def ready() -> bool:
            if not self.answers():
                return False
            self.create_database()
            prepare()
            return True

        self.initialise()
        return Program(
            "postgres",
            self.command(),
            ready=ready,
            user=self.user,
            stop_signal=signal.SIGINT,
            log=self.log_path,
        )

    def start(self) -> None:
        """Initialise if needed, start the server, wait until it answers, create the database."""
        self.initialise()
        log = self.log_path.open("ab")
        # Own session: Ctrl-C at a terminal reaches the caller, which stops us in order.
        self.process = subprocess.Popen(
            self.command(),
            user=self.user,
            cwd="/",
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # prctl must run in the child, after the switch to `user` (which would clear it).
            preexec_fn=functools.partial(die_with_parent, signal.SIGINT),  # noqa: PLW1509
        )
        log.close()
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        self.create_database()

    def create_database(self, name: str = DATABASE) -> None:
        """Create a database unless it exists."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def log_tail(self) -> str:
        """The end of the server's log."""
        path = self.log_path
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, the cluster is checkpointed cleanly."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would (it recovers from its WAL on restart)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
