"""Views of running processes from outside: whether one is alive, what an HTTP port answers."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def http_status(url: str, credentials: str | None = None) -> int:
    """The status of a GET, with Basic credentials when given (0 when nothing answers yet)."""
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
