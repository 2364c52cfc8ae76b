"""The decision archive in PostgreSQL: every decision kept for audit and appeals, and reviews.

`tables` holds the SQLAlchemy models, which the Alembic migrations in `migrations/` create;
`core.archive.schema` runs and checks those migrations (imported on its own, so processes that
only read and write the archive never load Alembic). `rows` turns entries of the high, low and
dead-letter streams into rows; `store` writes them in batches (upserts keyed by identity and
acceptance time) and drops expired monthly partitions (`partitions`); `queries` reads pages of
decisions and user histories; `reviews` records moderators' verdicts and reads them back as
examples.

The names below are loaded from their modules on first use (PEP 562), so that a process that
imports one light module of the package (the web app: `errors`, `records`) does not load
SQLAlchemy, about 20 MB of a web worker's memory, until it first touches the archive.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.archive.errors import ArchiveError, ArchiveUnavailable, NotDecided, UnknownEvent
    from core.archive.queries import (
        category_counts,
        daily_counts,
        find_event,
        list_decisions,
        user_history,
    )
    from core.archive.records import (
        ArchivedEvent,
        DecisionPage,
        DecisionQuery,
        PostingRate,
        Review,
        ReviewRequest,
        UserHistoryReport,
    )
    from core.archive.reviews import LabelledExample, add_review, export_rows, latest_examples
    from core.archive.rows import UnreadableEntry, build_row
    from core.archive.store import (
        DecisionWriter,
        drop_expired,
        open_archive,
        prepare_months,
        totals_by_outcome,
    )

_MODULE_OF = {
    "ArchiveError": "core.archive.errors",
    "ArchiveUnavailable": "core.archive.errors",
    "ArchivedEvent": "core.archive.records",
    "DecisionPage": "core.archive.records",
    "DecisionQuery": "core.archive.records",
    "DecisionWriter": "core.archive.store",
    "LabelledExample": "core.archive.reviews",
    "NotDecided": "core.archive.errors",
    "PostingRate": "core.archive.records",
    "Review": "core.archive.records",
    "ReviewRequest": "core.archive.records",
    "UnknownEvent": "core.archive.errors",
    "UnreadableEntry": "core.archive.rows",
    "UserHistoryReport": "core.archive.records",
    "add_review": "core.archive.reviews",
    "build_row": "core.archive.rows",
    "category_counts": "core.archive.queries",
    "daily_counts": "core.archive.queries",
    "drop_expired": "core.archive.store",
    "export_rows": "core.archive.reviews",
    "find_event": "core.archive.queries",
    "latest_examples": "core.archive.reviews",
    "list_decisions": "core.archive.queries",
    "open_archive": "core.archive.store",
    "prepare_months": "core.archive.store",
    "totals_by_outcome": "core.archive.store",
    "user_history": "core.archive.queries",
}


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ArchiveError",
    "ArchiveUnavailable",
    "ArchivedEvent",
    "DecisionPage",
    "DecisionQuery",
    "DecisionWriter",
    "LabelledExample",
    "NotDecided",
    "PostingRate",
    "Review",
    "ReviewRequest",
    "UnknownEvent",
    "UnreadableEntry",
    "UserHistoryReport",
    "add_review",
    "build_row",
    "category_counts",
    "daily_counts",
    "drop_expired",
    "export_rows",
    "find_event",
    "latest_examples",
    "list_decisions",
    "open_archive",
    "prepare_months",
    "totals_by_outcome",
    "user_history",
]
