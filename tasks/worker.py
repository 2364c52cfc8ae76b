"""Start a Celery worker for one role: `python -m tasks.worker --gpu 0 | --cpu | --pipeline`.

A GPU worker sees only its GPU (CUDA_VISIBLE_DEVICES) and consumes only that GPU's queue and
the synchronous screening queue; a CPU worker the CPU queue and the synchronous queue; the
pipeline worker runs the batcher's, reclaimer's and archiver's ticks and loads no model.

Each worker serves its host's metrics on WORKER_METRICS_PORT (or --metrics-port); its processes
write them to a directory of its own, `<WORKER_METRICS_DIR>/<role>-<port>` (one port, one worker
per host), which is emptied before the worker starts so no earlier run's values are summed.
WORKER_METRICS_DIR must be local to the host (not a volume other hosts share).

The command lines of Celery's programs for this app (worker, beat, and this launcher) are
spelled here once; every place that starts one calls these functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from celeryconfig import CPU_QUEUE, PIPELINE_QUEUE, SYNC_QUEUE, gpu_queue
from core.settings import Settings

CELERY_APP = "tasks.app"  # the module holding the Celery app, for `celery -A`


def metrics_dir(base: Path, name: str, port: int) -> Path:
    """Where a worker's processes write their metrics."""
    return base / f"{name}-{port}"


def celery_argv(program: str, options: list[str], python: str = sys.executable) -> list[str]:
    """The command line of one of Celery's programs (worker, beat, flower) for this app."""
    return [python, "-m", "celery", "-A", CELERY_APP, program, *options]


def worker_argv(
    queues: list[str],
    *,
    hostname: str,
    pool: str,
    concurrency: int,
    loglevel: str,
    events: bool = True,
    python: str = sys.executable,
) -> list[str]:
    """The command line of a Celery worker consuming `queues` (events: send task events)."""
    return celery_argv(
        "worker",
        [
            "--queues", ",".join(queues),
            "--hostname", hostname,
            "--pool", pool,
            "--concurrency", str(concurrency),
            "--loglevel", loglevel,
            "--without-gossip", "--without-mingle",
            *(["-E"] if events else []),
        ],
        python,
    )  # fmt: skip


def beat_argv(
    schedule: str, loglevel: str | None = None, python: str = sys.executable
) -> list[str]:
    """The command line of Celery beat keeping its schedule in `schedule` (loglevel: Celery's
    default when None)."""
    options = ["--loglevel", loglevel] if loglevel else []
    return celery_argv("beat", [*options, "--schedule", schedule], python)


def worker_launcher_argv(
    role: list[str], metrics_port: int | None = None, python: str = sys.executable
) -> list[str]:
    """The command line of this launcher for a role, e.g. ["--gpu", "0"] (metrics_port: serve
    /metrics there, 0 off; WORKER_METRICS_PORT when None)."""
    port = [] if metrics_port is None else ["--metrics-port", str(metrics_port)]
    return [python, "-m", "tasks.worker", *role, *port]


def worker_command(
    role: str,
    gpu: int | None,
    concurrency: int,
    loglevel: str,
    metrics: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The celery command line and environment for a role (metrics: its multiprocess dir)."""
    env = dict(os.environ)
    env.setdefault(
        "OTEL_SERVICE_NAME", f"screening-{'pipeline' if role == 'pipeline' else 'worker'}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if metrics is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    if role == "gpu":
        assert gpu is not None
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        env.setdefault("EMBED_DEVICE", "cuda")
        queues, name, pool = [gpu_queue(gpu), SYNC_QUEUE], f"gpu{gpu}", "prefork"
    elif role == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("EMBED_DEVICE", "cpu")
        queues, name, pool = [CPU_QUEUE, SYNC_QUEUE], "cpu", "prefork"
    else:
        queues, name, pool = [PIPELINE_QUEUE], "pipeline", "threads"
    # The pipeline's ticks (drain, reclaim, archive, retain) each hold a thread while they
    # run; four keep a busy drain and archive from delaying the reclaimer.
    threads = concurrency if role != "pipeline" else max(concurrency, 4)
    argv = worker_argv(
        queues, hostname=f"{name}@%h", pool=pool, concurrency=threads, loglevel=loglevel
    )
    return argv, env


def main() -> None:
    """Parse the role and replace this process with the worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--gpu", type=int, help="pin to this GPU and consume screen.gpuN")
    role.add_argument("--cpu", action="store_true", help="consume screen.cpu on the CPU")
    role.add_argument("--pipeline", action="store_true", help="run the batcher and reclaimer")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="processes (threads for pipeline)"
    )
    parser.add_argument("--loglevel", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve /metrics here (WORKER_METRICS_PORT)"
    )
    options = parser.parse_args()
    settings = Settings()
    name = "gpu" if options.gpu is not None else "cpu" if options.cpu else "pipeline"
    port = settings.worker_metrics_port if options.metrics_port is None else options.metrics_port
    metrics = None
    if port:
        label = name if options.gpu is None else f"gpu{options.gpu}"
        base = settings.worker_metrics_dir or settings.var_dir / "prometheus"
        metrics = metrics_dir(base, label, port)
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
    command, env = worker_command(name, options.gpu, options.concurrency, options.loglevel, metrics)
    env["WORKER_METRICS_PORT"] = str(port)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
