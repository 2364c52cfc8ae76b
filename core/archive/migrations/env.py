"""Alembic's entry point: migrate the archive database named by the configuration.

The URL comes from the configuration (core.archive.schema.migrate sets it) or, for the `alembic`
command, from DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from core.archive.schema import include_name
from core.archive.store import database_url
from core.archive.tables import Base


def run_migrations() -> None:
    """Run the migrations Alembic selected, online, in one transaction."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url or database_url(os.environ["DATABASE_URL"]))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


try:
    context.config  # noqa: B018 - only there while Alembic runs this file
except (AttributeError, NameError):  # imported outside a migration run (an import check)
    pass
else:
    run_migrations()
