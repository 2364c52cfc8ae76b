"""The archive's schema on a database: Alembic migrations forward to head, and a drift check.

The migrations live next to this module (`migrations/`), so they ship with the package; the
`alembic.ini` at the repository root points the `alembic` command at them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from core.archive import partitions
from core.archive.store import database_url, unavailable_as_archive_error
from core.archive.tables import Base

MIGRATIONS = Path(__file__).parent / "migrations"


def include_name(name: str | None, type_: str, _parents: Mapping[Any, str | None]) -> bool:
    """What autogenerate compares: everything but the monthly partitions made at run time."""
    return not (type_ == "table" and name is not None and partitions.is_partition_name(name))


def alembic_config(url: str) -> Config:
    """An Alembic configuration for a database, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Run the migrations forward to `revision` (creating the schema on an empty database)."""
    with unavailable_as_archive_error():
        command.upgrade(alembic_config(url), revision)


def differences(url: str) -> list[Any]:
    """What the database's schema lacks or has beyond the models (empty when they agree)."""
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": include_name, "compare_type": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()
