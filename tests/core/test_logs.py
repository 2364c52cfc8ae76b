"""The JSON logs: one object per line, tracebacks rendered as text from every logger."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from billiard.einfo import ExceptionInfo
from core.logs import configure_logging

configure_logging("INFO")
try:
    raise ValueError("boom in a task")
except ValueError:
    celery_style = ExceptionInfo()  # what Celery's task tracer logs with
    logging.getLogger("celery.app.trace").error("Task raised", exc_info=celery_style.exc_info)
    logging.getLogger("celery.worker").critical("Unrecoverable error", exc_info=True)
"""


def test_tracebacks_from_standard_library_loggers_are_rendered_as_text() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["event"] for line in lines] == ["Task raised", "Unrecoverable error"]
    for line in lines:
        assert "exc_info" not in line
        assert "Traceback (most recent call last)" in line["exception"]
        assert "ValueError: boom in a task" in line["exception"]
        assert "traceback object" not in json.dumps(line).lower()
