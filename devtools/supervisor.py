"""A small process supervisor: start programs in order, restart any that exits with a backoff,
stop them all (and whatever they started) on request.

Each program runs in its own session, so a Ctrl-C at the terminal reaches only the supervisor,
which stops everything in reverse order. Each is also asked to receive SIGTERM when the
supervisor dies (PR_SET_PDEATHSIG), so a supervisor killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `signum` to this process when its parent dies (Linux)."""
    parent = os.getppid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signum)


def child_pids(pid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


@dataclass(frozen=True)
class Program:
    """A command to keep running, with what it adds to the environment."""

    name: str
    command: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None  # checked after the first start before the next
    user: str | None = None  # the account it runs as (None: this process's)
    # What asks it to stop, from the supervisor or when the supervisor dies (PostgreSQL's fast
    # shutdown is SIGINT: its SIGTERM waits for every client to disconnect first).
    stop_signal: signal.Signals = signal.SIGTERM
    log: Path | None = None  # where its output goes (None: the supervisor's log_dir or stdout)


@dataclass
class _Running:
    """A program's current process and its restart bookkeeping."""

    program: Program
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    restart_at: float | None = None


class Supervisor:
    """Keeps programs running: restarts with exponential backoff, stops all only on request."""

    def __init__(
        self,
        programs: list[Program],
        *,
        cwd: Path,
        env: Mapping[str, str],
        say: Callable[[str], None],
        log_dir: Path | None = None,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.say = say
        self.log_dir = log_dir  # None: programs write to this process's stdout
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_after_s = healthy_after_s
        self._running = {p.name: _Running(p, backoff_s=min_backoff_s) for p in programs}

    # ------------------------------------------------------------------ views

    def pid(self, name: str) -> int | None:
        """The pid of a program's live process, or None while it is down."""
        process = self._running[name].process
        return process.pid if process is not None and process.poll() is None else None

    def restarts(self) -> dict[str, int]:
        """How many times each program has been restarted."""
        return {name: running.restarts for name, running in self._running.items()}

    def all_running(self) -> bool:
        """Whether every program has a live process."""
        return all(self.pid(name) is not None for name in self._running)

    # ------------------------------------------------------------------ control

    def start(self, ready_timeout_s: float = 60.0) -> None:
        """Start every program in order, waiting for each one's readiness check."""
        for running in self._running.values():
            self._spawn(running)
            check = running.program.ready
            deadline = time.monotonic() + ready_timeout_s
            while check is not None and not check():
                if running.process is not None and running.process.poll() is not None:
                    raise RuntimeError(f"{running.program.name} exited while starting")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{running.program.name} was not ready in time")
                time.sleep(0.1)

    def check(self) -> None:
        """One supervision step: notice exits, and restart programs whose backoff is over."""
        now = time.monotonic()
        for running in self._running.values():
            process = running.process
            if process is not None and process.poll() is not None:
                self._reap(process)
                running.process = None
                if now - running.started_at >= self.healthy_after_s:
                    running.backoff_s = self.min_backoff_s  # it ran well: a fresh start
                running.restart_at = now + running.backoff_s
                self.say(
                    f"{running.program.name} exited with status {process.returncode}; "
                    f"restarting in {running.backoff_s:g} s"
                )
                running.backoff_s = min(running.backoff_s * 2, self.max_backoff_s)
            elif process is None and running.restart_at is not None and now >= running.restart_at:
                running.restarts += 1
                running.restart_at = None
                self._spawn(running)

    def run(self, stopping: Callable[[], bool], every_s: float = 0.2) -> None:
        """Supervise until `stopping()` says so."""
        while not stopping():
            self.check()
            time.sleep(every_s)

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every program in the reverse order of their start: SIGTERM, then SIGKILL for
        what is left of each one's process group after `timeout_s`."""
        live = [
            (r.process, r.program.stop_signal)
            for r in reversed(self._running.values())
            if r.process is not None
        ]
        for process, signum in live:
            if process.poll() is None:
                process.send_signal(signum)
        deadline = time.monotonic() + timeout_s
        for process, _ in live:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"pid {process.pid} did not stop in time; killing it")
            self._reap(process)
        for running in self._running.values():
            running.process = None
            running.restart_at = None

    # ------------------------------------------------------------------ helpers

    def _spawn(self, running: _Running) -> None:
        """Start a program's process in its own session, tied to this process's life."""
        program = running.program
        path = program.log
        if path is None and self.log_dir is not None:
            path = self.log_dir / f"{program.name.replace(' ', '-')}.log"
        log = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            log = path.open("ab")
        try:
            running.process = subprocess.Popen(
                program.command,
                env={**self.env, **program.env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
                user=program.user,
                # Safe with threads about: between fork and exec it makes only two system calls
                # (after the switch to `user`, which would otherwise clear the request).
                preexec_fn=functools.partial(die_with_parent, program.stop_signal),  # noqa: PLW1509
            )
        finally:
            if log is not None:
                log.close()  # the child has its own descriptor
        running.started_at = time.monotonic()

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        """Kill whatever the process left in its process group (a worker's pool children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
