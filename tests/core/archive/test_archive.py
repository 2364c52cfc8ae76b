"""The archive on a real PostgreSQL: rows, upserts, partitions, pages, reviews and histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from core.archive import (
    DecisionQuery,
    DecisionWriter,
    NotDecided,
    UnknownEvent,
    add_review,
    build_row,
    drop_expired,
    latest_examples,
    list_decisions,
    totals_by_outcome,
    user_history,
)
from core.archive.partitions import existing
from core.archive.records import ArchivedEvent, Review
from core.models import Category
from tests.factories import dlq_fields, entry_fields, now, rows_of


def count(archive: Engine, where: str = "true") -> int:
    """Rows of the decisions table matching a condition."""
    with archive.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM decisions WHERE {where}")).scalar())


def test_a_row_carries_the_event_the_receipt_and_the_trace_id() -> None:
    accepted = now()
    [row] = rows_of(("high", entry_fields("e1", accepted=accepted, route="high")))
    assert row["tenant"] == "default"
    assert row["accepted_at"] == accepted.replace(microsecond=accepted.microsecond // 1000 * 1000)
    assert row["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert row["receipt"]["route"] == "high" and row["route"] == "high"
    assert row["content"] == "hello there" and row["user_id"] == "u-1"
    [dead] = rows_of(("dlq", dlq_fields("e2", accepted=accepted)))
    assert dead["error"] == "PoisonedEvent: boom" and dead["deliveries"] == 3
    assert dead["receipt"] is None and dead["category"] is None


def test_an_entry_names_its_tenant_and_otherwise_belongs_to_the_default_one() -> None:
    fields = entry_fields("e1", accepted=now())
    assert build_row("low", "1-1", {**fields, "tenant": "acme"})["tenant"] == "acme"
    assert build_row("low", "1-1", fields)["tenant"] == "default"


def test_writing_a_batch_twice_leaves_one_row_per_event(archive: Engine) -> None:
    moment = now()
    rows = rows_of(
        *[("low", entry_fields(f"e{i}", accepted=moment, seq=i)) for i in range(30)],
        ("dlq", dlq_fields("dead", accepted=moment)),
    )
    writer = DecisionWriter(archive)
    assert writer.write(rows) == 31
    assert DecisionWriter(archive).write(list(reversed(rows))) == 31  # a redelivery
    assert count(archive) == 31
    assert totals_by_outcome(archive) == {"high": 0, "low": 30, "dlq": 1}


def test_rows_land_in_monthly_partitions_and_retention_drops_whole_old_months(
    archive: Engine,
) -> None:
    old = datetime(2024, 1, 15, tzinfo=UTC)
    recent = now()
    writer = DecisionWriter(archive)
    writer.write(
        rows_of(
            ("low", entry_fields("old", accepted=old)),
            ("low", entry_fields("new", accepted=recent)),
        )
    )
    with archive.connect() as conn:
        names = set(existing(conn))
    assert {"decisions_y2024m01", f"decisions_y{recent.year:04d}m{recent.month:02d}"} <= names
    dropped = drop_expired(archive, retention_days=400, now=recent)
    assert dropped == ["decisions_y2024m01"]
    assert count(archive) == 1 and count(archive, "event_id = 'new'") == 1
    assert drop_expired(archive, retention_days=400, now=recent) == []


def test_pages_go_newest_first_and_the_cursor_visits_every_row_once(archive: Engine) -> None:
    start = now() - timedelta(hours=1)
    rows = rows_of(
        *[
            ("low", entry_fields(f"e{i:02d}", accepted=start + timedelta(seconds=i // 3), seq=i))
            for i in range(25)
        ]
    )
    DecisionWriter(archive).write(rows)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = DecisionQuery.model_validate(
            {"limit": "7", **({"cursor": cursor} if cursor else {})}
        )
        page, cursor = list_decisions(archive, "default", query)
        pages += 1
        for event in page:
            ArchivedEvent.model_validate(event)
        seen += [event["event_id"] for event in page]
        if cursor is None:
            break
    assert pages == 4
    assert sorted(seen) == sorted(r["event_id"] for r in rows) and len(seen) == 25
    times = [next(r["accepted_at"] for r in rows if r["event_id"] == e) for e in seen]
    assert times == sorted(times, reverse=True)


def test_filters_select_by_user_route_category_time_and_review(archive: Engine) -> None:
    moment = now()
    DecisionWriter(archive).write(
        rows_of(
            ("high", entry_fields("h1", accepted=moment, user_id="bad", route="high",
                                  category=Category.TOXIC)),
            ("low", entry_fields("l1", accepted=moment, user_id="bad", seq=1)),
            ("low", entry_fields("l2", accepted=moment - timedelta(days=2), user_id="ok")),
        )
    )  # fmt: skip
    add_review(archive, "default", "discord", "l1", label=Category.SPAM, reviewer="mod", note=None)

    def ids(**filters: str) -> list[str]:
        page, _ = list_decisions(archive, "default", DecisionQuery.model_validate(filters))
        return sorted(event["event_id"] for event in page)

    assert ids(user_id="bad") == ["h1", "l1"]
    assert ids(route="high") == ["h1"]
    assert ids(category="TOXIC") == ["h1"]
    assert ids(since=(moment - timedelta(days=1)).isoformat()) == ["h1", "l1"]
    assert ids(until=(moment - timedelta(days=1)).isoformat()) == ["l2"]
    assert ids(reviewed="true") == ["l1"]
    assert ids(reviewed="false") == ["h1", "l2"]
    assert list_decisions(archive, "other-tenant", DecisionQuery())[0] == []


def test_reviews_are_appended_the_latest_supersedes_and_disagreement_is_an_overturn(
    archive: Engine,
) -> None:
    DecisionWriter(archive).write(
        rows_of(("high", entry_fields("e1", accepted=now(), route="high", category=Category.TOXIC)))
    )
    first, _ = add_review(
        archive, "default", "discord", "e1", label=Category.TOXIC, reviewer="a", note=None
    )
    second, example = add_review(
        archive, "default", "discord", "e1", label=Category.LOW_RISK, reviewer="b", note="banter"
    )
    Review.model_validate(first)
    assert first["overturn"] is False and second["overturn"] is True
    assert second["id"] > first["id"]
    assert example.label is Category.LOW_RISK and example.text == "hello there"
    [event], _ = list_decisions(archive, "default", DecisionQuery())
    assert event["label"] == "LOW_RISK" and event["overturned"] is True
    [latest] = latest_examples(archive)
    assert latest.label is Category.LOW_RISK and latest.review_id == second["id"]
    with archive.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reviews")).scalar() == 2


def test_a_review_of_an_unknown_or_dead_lettered_event_is_refused(archive: Engine) -> None:
    DecisionWriter(archive).write(rows_of(("dlq", dlq_fields("dead", accepted=now()))))
    with pytest.raises(UnknownEvent):
        add_review(
            archive, "default", "discord", "nope", label=Category.SPAM, reviewer="a", note=None
        )
    with pytest.raises(NotDecided):
        add_review(
            archive, "default", "discord", "dead", label=Category.SPAM, reviewer="a", note=None
        )


def test_a_users_history_counts_match_their_rows_per_window(archive: Engine) -> None:
    moment = now()
    entries = [
        ("high", entry_fields("a", accepted=moment - timedelta(hours=1), route="high",
                              category=Category.TOXIC)),
        ("high", entry_fields("b", accepted=moment - timedelta(days=3), route="high",
                              category=Category.SPAM)),
        ("low", entry_fields("c", accepted=moment - timedelta(days=30))),
        ("dlq", dlq_fields("d", accepted=moment - timedelta(minutes=5))),
        ("low", entry_fields("other", accepted=moment, user_id="someone-else")),
    ]  # fmt: skip
    DecisionWriter(archive).write(rows_of(*entries))
    report = user_history(archive, "default", "discord", "u-1", moment)
    assert report is not None
    counts = report["counts"]
    assert counts["24h"]["total"] == 2 and counts["24h"]["dead_lettered"] == 1
    assert counts["24h"]["by_category"]["TOXIC"] == 1 and counts["24h"]["by_route"]["high"] == 1
    assert counts["7d"]["by_route"] == {"high": 2, "low": 0}
    assert counts["all"]["total"] == 4 and counts["all"]["by_category"]["LOW_RISK"] == 1
    assert [e["event_id"] for e in report["recent"]] == ["d", "a", "b", "c"]
    assert user_history(archive, "default", "discord", "never-seen", moment) is None


def test_an_event_holding_nul_characters_is_archived_with_them_replaced(archive: Engine) -> None:
    # PostgreSQL's text and jsonb refuse NUL; an accepted event may hold one, and must not stop
    # the archiver.
    fields = entry_fields("nul", accepted=now(), content="bad\x00byte", user_id="u\x00ser")
    [row] = rows_of(("low", fields))
    assert DecisionWriter(archive).write([row]) == 1
    [event], _ = list_decisions(archive, "default", DecisionQuery())
    assert event["content"] == "bad\ufffdbyte" and event["user_id"] == "u\ufffdser"
