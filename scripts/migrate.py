"""`make migrate`: bring the archive database at DATABASE_URL to the latest schema.

Run once per release before the new pipeline worker starts (docker-compose's `migrate` service,
the pipeline pod's init container on Kubernetes); running it again changes nothing.
"""

from __future__ import annotations

import sys

from core.archive import ArchiveError
from core.archive.schema import migrate
from core.settings import Settings


def main() -> int:
    """Migrate forward to head; 2 when there is no archive or it cannot be reached."""
    settings = Settings()
    if not settings.database_url:
        sys.stderr.write("DATABASE_URL is not set: there is no archive to migrate\n")
        return 2
    try:
        migrate(settings.database_url)
    except ArchiveError as exc:
        sys.stderr.write(f"cannot migrate the archive: {exc}\n")
        return 2
    sys.stdout.write("archive schema is at the latest revision\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
