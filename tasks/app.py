"""The Celery application of `celery -A tasks.app worker|beat|flower`: its entry point reads the
environment here, once per process."""

from __future__ import annotations

from core.settings import Settings
from tasks import create_celery

app = create_celery(Settings())
