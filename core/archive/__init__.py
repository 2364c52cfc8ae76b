"""The decision archive in PostgreSQL: every decision kept for audit and appeals, and reviews.

`tables` holds the SQLAlchemy models, which the Alembic migrations in `migrations/` create;
`core.archive.schema` runs and checks those migrations (imported on its own, so processes that
only read and write the archive never load Alembic). `rows` turns entries of the high, low and
dead-letter streams into rows; `store` writes them in batches (upserts keyed by identity and
acceptance time) and drops expired monthly partitions (`partitions`); `queries` reads pages of
decisions and user histories; `reviews` records moderators' verdicts and reads them back as
examples.
"""

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
