"""The migrations build, from an empty database, exactly the schema the models describe."""

from __future__ import annotations

import uuid

from core.archive.schema import differences, migrate
from devtools.postgres_server import PostgresServer


def test_migrations_run_forward_from_empty_and_match_the_models(
    postgres_server: PostgresServer,
) -> None:
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    assert differences(url) != []  # empty: every table is missing
    migrate(url)
    migrate(url)  # already at head: nothing to do
    assert differences(url) == []
