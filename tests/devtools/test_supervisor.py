"""The supervisor keeps programs running, and leaves nothing behind when it stops or dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.pipeline import wait_until
from devtools.supervisor import Program, Supervisor
from tests.factories import alive

# A program that starts a grandchild in its own process group, writes both pids, and sleeps.
FAMILY = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "open(sys.argv[1], 'w').write(f'{__import__(\"os\").getpid()} {child.pid}'); "
    "time.sleep(600)"
)


def family(path: Path) -> list[int]:
    """The pids a FAMILY program wrote, once it has."""
    wait_until(lambda: path.exists() and path.read_text().count(" ") == 1, 10, str(path))
    return [int(pid) for pid in path.read_text().split()]


def test_a_program_that_exits_is_restarted_after_a_growing_backoff(tmp_path: Path) -> None:
    lines: list[str] = []
    crashing = Program("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    steady = Program("steady", [sys.executable, "-c", "import time; time.sleep(600)"])
    supervisor = Supervisor(
        [steady, crashing], cwd=tmp_path, env=os.environ, say=lines.append, min_backoff_s=0.2
    )
    supervisor.start()
    steady_pid = supervisor.pid("steady")
    try:
        started = time.monotonic()
        wait_until(lambda: supervisor.check() or supervisor.restarts()["crasher"] >= 3, 20, "3")
        elapsed = time.monotonic() - started
        assert elapsed >= 0.2 + 0.4  # backoffs 0.2 s, 0.4 s, 0.8 s: the third is under way
        assert supervisor.restarts() == {"steady": 0, "crasher": 3}
        assert supervisor.pid("steady") == steady_pid
        assert "crasher exited with status 3; restarting in 0.2 s" in lines
        assert "crasher exited with status 3; restarting in 0.4 s" in lines
    finally:
        supervisor.stop()
    assert not alive(steady_pid)


def test_stopping_ends_every_program_and_what_they_started(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [Program("family", [sys.executable, "-c", FAMILY, str(tmp_path / "pids")])],
        cwd=tmp_path,
        env=os.environ,
        say=lambda _: None,
    )
    supervisor.start()
    parent, child = family(tmp_path / "pids")
    supervisor.stop()
    assert not alive(parent)
    wait_until(lambda: not alive(child), 10, "the grandchild to go")


def test_a_killed_program_leaves_no_orphan_when_it_is_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [Program("family", [sys.executable, "-c", FAMILY, str(tmp_path / "pids")])],
        cwd=tmp_path,
        env=os.environ,
        say=lambda _: None,
        min_backoff_s=0.1,
    )
    supervisor.start()
    try:
        parent, child = family(tmp_path / "pids")
        (tmp_path / "pids").unlink()
        os.kill(parent, signal.SIGKILL)
        wait_until(lambda: supervisor.check() or supervisor.restarts()["family"] == 1, 10, "1")
        assert not alive(child)
        assert family(tmp_path / "pids")[0] == supervisor.pid("family")
    finally:
        supervisor.stop()


SUPERVISED = """
import os, sys, time
from pathlib import Path
from devtools.supervisor import Program, Supervisor
program = Program("family", [sys.executable, "-c", sys.argv[1], sys.argv[2]])
supervisor = Supervisor([program], cwd=Path.cwd(), env=os.environ, say=print)
supervisor.start()
supervisor.run(lambda: False)
"""


def test_a_supervisor_killed_outright_takes_its_programs_with_it(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, FAMILY, str(tmp_path / "pids")], cwd=root
    )
    parent, child = family(tmp_path / "pids")
    try:
        process.kill()  # SIGKILL: no handler runs; the kernel sends the programs SIGTERM
        process.wait(timeout=10)
        wait_until(lambda: not alive(parent), 10, "the program to go with its supervisor")
    finally:
        if process.poll() is None:
            process.kill()
        os.kill(child, signal.SIGKILL)  # stopping its own children is each program's part
