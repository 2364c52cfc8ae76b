"""`make run`: start the whole system on this machine, in the foreground, and stop it all on exit.

Starts a redis-server (append-only file on, data under var/redis) unless REDIS_URL is set, then
the web app under gunicorn. Ctrl-C or SIGTERM stops every process it started, and so does the
death of any one of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import Settings
from devtools.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOCAL_REDIS_PORT = int(os.environ.get("LOCAL_REDIS_PORT", "6390"))


def say(message: str) -> None:
    """Write one line for the person at the terminal."""
    sys.stdout.write(f"[make run] {message}\n")
    sys.stdout.flush()


def start_redis() -> RedisServer:
    """Start an embedded redis-server with an append-only file and wait until it answers."""
    server = RedisServer(
        VAR / "redis",
        port=LOCAL_REDIS_PORT,
        appendonly=True,
        appendfsync=os.environ.get("REDIS_APPENDFSYNC", "everysec"),
    )
    try:
        server.start()
    except RuntimeError as exc:
        sys.exit(f"could not start redis-server on port {LOCAL_REDIS_PORT}: {exc}")
    return server


def stop_all(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Stop processes in the reverse order of their start: SIGTERM, then SIGKILL after 20 s."""
    for _, process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 20
    for name, process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in time; killing it")
            process.kill()
            process.wait()


def main() -> int:
    """Start everything, print where it is, and wait for a signal or a dead process."""
    env = dict(os.environ)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    if "REDIS_URL" not in env:
        server = start_redis()
        assert server.process is not None
        env["REDIS_URL"] = server.url
        processes.append(("redis-server", server.process))
        say(f"redis-server on {env['REDIS_URL']} (append-only file in var/redis)")
    else:
        say(f"using the Redis at {env['REDIS_URL']}")
    settings = Settings(redis_url=env["REDIS_URL"])

    metrics_dir = VAR / "prometheus"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    processes.append(("web", subprocess.Popen(gunicorn, env=env, cwd=ROOT, start_new_session=True)))

    say(f"web app on http://{settings.web_host}:{settings.web_port}  (API docs: /openapi.json)")
    if settings.using_dev_key:
        say("API key: dev-key  (development default; set API_KEYS=key1,key2 to replace it)")
    else:
        say(f"API keys: {len(settings.api_keys)} configured through API_KEYS")
    say("Ctrl-C stops everything")

    exit_code = 0
    while not stopping:
        for name, process in processes:
            if process.poll() is not None:
                say(f"{name} exited with status {process.returncode}; stopping the rest")
                exit_code = 1
                stopping = True
                break
        time.sleep(0.2)
    stop_all(processes)
    say("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
