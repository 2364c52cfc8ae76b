"""A WSGI app under gunicorn with the project's gevent settings, on a free port."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core.admission.apikeys import ApiKey
from devtools.redis_server import free_port
from devtools.supervisor import child_pids

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"


def gunicorn_argv(
    app: str | None = None, config: Path = GUNICORN_CONFIG, python: str = sys.executable
) -> list[str]:
    """The command line of gunicorn with the project's settings (app: the config's when None)."""
    return [python, "-m", "gunicorn", "-c", str(config), *([app] if app else [])]


class GunicornServer:
    """A gunicorn process using deploy/gunicorn.conf.py; the app is webapp.wsgi:app by default."""

    def __init__(
        self, redis_url: str, work_dir: Path, app: str = "webapp.wsgi:app", **env: str
    ) -> None:
        self.port = free_port()
        self.work_dir = work_dir
        self.app = app
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "WEB_PORT": str(self.port),
            "API_KEYS": "live-key",
            "PROMETHEUS_MULTIPROC_DIR": str(work_dir / "prometheus"),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start gunicorn and wait until /healthz answers."""
        (self.work_dir / "prometheus").mkdir(parents=True, exist_ok=True)
        self.log = open(self.work_dir / "gunicorn.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            gunicorn_argv(self.app),
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:  # refused, reset or timed out (URLError is one): not up yet
                time.sleep(0.1)
        self.stop()
        raise RuntimeError((self.work_dir / "gunicorn.log").read_text()[-3000:])

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON (or text) body."""
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {
            "X-API-Key": ApiKey.parse(self.env["API_KEYS"].split(",")[0]).key,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def raw(self, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are (for requests no HTTP client would build); return the status,
        the headers (lower-case names) and the body of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, body

    def worker_pids(self) -> list[int]:
        """Pids of the gunicorn worker processes (children of the master)."""
        assert self.process is not None
        return child_pids(self.process.pid)

    def stop(self) -> None:
        """Stop gunicorn gracefully."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None
        self.log.close()
