"""`make run`: start the whole system on this machine, in the foreground, and stop it all on exit.

Starts a redis-server (append-only file on, data under var/redis) unless REDIS_URL is set, a
PostgreSQL for the archive (data under var/postgres, migrated to the latest schema) unless
DATABASE_URL is set, then
the web app under gunicorn, Celery beat, the pipeline worker (batcher and reclaimer), one
screening worker per visible GPU (or one CPU worker when there is none) and Flower. Ctrl-C or
SIGTERM stops every process it started, and so does the death of any one of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.archive.schema import migrate
from core.settings import Settings
from devtools.postgres_server import PostgresServer
from devtools.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOCAL_REDIS_PORT = int(os.environ.get("LOCAL_REDIS_PORT", "6390"))
LOCAL_POSTGRES_PORT = int(os.environ.get("LOCAL_POSTGRES_PORT", "6391"))
# Worker hosts serve /metrics from here up: the pipeline worker, then each screening worker.
LOCAL_METRICS_PORT = int(os.environ.get("LOCAL_METRICS_PORT", "9101"))


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


def archive_database(url: str | None, processes: list[tuple[str, subprocess.Popen[bytes]]]) -> str:
    """The archive's database (DATABASE_URL, or an embedded PostgreSQL), migrated; its URL."""
    if url:
        say("using the archive database at DATABASE_URL")
    else:
        url = start_postgres(processes)
    migrate(url)
    return url


def start_postgres(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> str:
    """Start the embedded PostgreSQL (its cluster made once under var/postgres); its URL."""
    server = PostgresServer(VAR / "postgres", port=LOCAL_POSTGRES_PORT)
    try:
        server.start()
    except RuntimeError as exc:
        stop_all(processes)
        sys.exit(f"could not start PostgreSQL on port {LOCAL_POSTGRES_PORT}: {exc}")
    assert server.process is not None
    processes.append(("postgres", server.process))
    say(f"PostgreSQL on {server.url} (data in var/postgres; set DATABASE_URL for another)")
    return server.url


def visible_gpus() -> int:
    """How many GPUs nvidia-smi lists (0 without one), honouring CUDA_VISIBLE_DEVICES."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())


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
    env["DATABASE_URL"] = archive_database(env.get("DATABASE_URL"), processes)
    settings = Settings(redis_url=env["REDIS_URL"])

    gpus = visible_gpus()
    env.setdefault("GPU_QUEUES", str(gpus))
    metrics_dir = VAR / "prometheus" / "web"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    port = LOCAL_METRICS_PORT
    workers = [("pipeline worker", ["--pipeline"])] + (
        [(f"gpu{i} worker", ["--gpu", f"{i}"]) for i in range(gpus)]
        if gpus
        else [("cpu worker", ["--cpu"])]
    )
    commands = [
        ("web", [python, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
         {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}),
        ("beat", [python, "-m", "celery", "-A", "tasks.app", "beat", "--loglevel", "WARNING",
                  "--schedule", str(VAR / "celerybeat-schedule")], {}),
        *(
            (name, [python, "-m", "tasks.worker", *role, "--metrics-port", str(port + i)], {})
            for i, (name, role) in enumerate(workers)
        ),
        ("flower", [python, "-m", "celery", "-A", "tasks.app", "flower",
                    "--address=127.0.0.1", f"--port={settings.flower_port}",
                    f"--basic-auth={settings.flower_basic_auth}", "--persistent=False"], {}),
    ]  # fmt: skip
    for name, command, extra in commands:
        process = subprocess.Popen(command, env={**env, **extra}, cwd=ROOT, start_new_session=True)
        processes.append((name, process))

    say(f"web app on http://{settings.web_host}:{settings.web_port}  (API docs: /openapi.json)")
    say(
        "metrics: /metrics on the web app; "
        + ", ".join(f"{name} on :{port + i}" for i, (name, _) in enumerate(workers))
    )
    screening = f"{gpus} GPU worker(s)" if gpus else "1 CPU worker"
    user = settings.flower_basic_auth.split(":", 1)[0]
    say(
        f"{screening}, beat and the pipeline worker; Flower on http://127.0.0.1:{settings.flower_port}"
        f" (user {user}; FLOWER_BASIC_AUTH)"
    )
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
