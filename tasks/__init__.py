"""The Celery side: the app factory here; tasks, batcher, worker launcher in the modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery import Celery

    from core.settings import Settings

TASK_MODULES = ["tasks.batcher", "tasks.screening", "tasks.archiver", "tasks.lifecycle"]


def create_celery(settings: Settings, include_tasks: bool = True) -> Celery:
    """A Celery app configured for these settings; the web app sends tasks by name only."""
    from celery import Celery

    import celeryconfig

    app = Celery("screening", include=TASK_MODULES if include_tasks else [])
    app.conf.update(celeryconfig.from_settings(settings))
    return app
