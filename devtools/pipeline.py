"""The pipeline's processes for tests and benchmarks: beat, pipeline and screening workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from devtools.redis_server import free_port
from tasks.worker import beat_argv, worker_launcher_argv

ROOT = Path(__file__).resolve().parent.parent


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll `check` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class PipelineProcesses:
    """Starts and stops Celery processes with one environment, each in its own process group."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports: dict[str, int] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        """Start the command line `argv` as `name`, logging to <log_dir>/<name>.log."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                env={**self.env, **env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def start_beat(self) -> None:
        """Celery beat with its schedule file in the log directory."""
        self.start("beat", beat_argv(str(self.log_dir / "celerybeat-schedule")))

    def start_worker(self, name: str, role: list[str], **env: str) -> subprocess.Popen[bytes]:
        """A worker through the project's launcher, e.g. role=["--cpu"], serving its metrics on
        a free port (`metrics_ports[name]`)."""
        port = self.metrics_ports[name] = free_port()
        return self.start(name, worker_launcher_argv(role), WORKER_METRICS_PORT=str(port), **env)

    def metrics(self, name: str) -> str:
        """What a worker's /metrics serves now."""
        url = f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode()
            return text

    def signal(self, name: str, signum: int, group: bool = False) -> None:
        """Send a signal to a process (or to its whole process group)."""
        process = self.processes[name]
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

    def wait(self, name: str, timeout: float) -> int:
        """Wait for a process to exit and return its status."""
        return self.processes[name].wait(timeout=timeout)

    def log(self, name: str) -> str:
        """What a process has written so far."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        """Kill every process group this object started."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()
