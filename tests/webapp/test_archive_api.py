"""The archive's endpoints over the app: search, user history, reviews, and their 4xx answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from flask.testing import FlaskClient

from core.archive import DecisionWriter, open_archive
from core.archive.records import DecisionPage, Review, UserHistoryReport
from core.models import Category
from tests.factories import AUTH, dlq_fields, entry_fields, event_body, make_app, now, rows_of


@pytest.fixture()
def archived(redis_url: str, database_url: str) -> FlaskClient:
    """A client of an app whose archive holds a few decisions of user u-1 and one dead letter."""
    engine = open_archive(database_url)
    moment = now()
    DecisionWriter(engine).write(
        rows_of(
            ("high", entry_fields("h1", accepted=moment, route="high", category=Category.TOXIC,
                                  content="you are an idiot")),
            ("low", entry_fields("l1", accepted=moment - timedelta(days=2), seq=1)),
            ("dlq", dlq_fields("d1", accepted=moment - timedelta(minutes=1))),
        )
    )  # fmt: skip
    engine.dispose()
    return make_app(redis_url, database_url=database_url).test_client()


def test_a_review_is_recorded_published_and_shown_on_the_decision(
    archived: FlaskClient, redis_client: redis.Redis
) -> None:
    body = {"label": "LOW_RISK", "reviewer": "mod-7", "note": "friends joking"}
    response = archived.post("/v1/events/discord/h1/review", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    review = Review.model_validate(response.get_json())
    assert review.overturn is True and review.machine_category is Category.TOXIC
    [(_, label)] = redis_client.xrange("events:labels")
    assert label[b"label"] == b"LOW_RISK" and label[b"text"] == b"you are an idiot"
    page = archived.get("/v1/decisions?reviewed=true", headers=AUTH).get_json()
    assert [d.event_id for d in DecisionPage.model_validate(page).decisions] == ["h1"]
    assert page["decisions"][0]["label"] == "LOW_RISK"


def test_reviews_of_unknown_queued_and_dead_lettered_events_get_404_and_409(
    archived: FlaskClient,
) -> None:
    review = {"label": "SPAM", "reviewer": "mod"}
    assert (
        archived.post("/v1/events/discord/nope/review", json=review, headers=AUTH).status_code
        == 404
    )
    assert (
        archived.post("/v1/events/myspace/h1/review", json=review, headers=AUTH).status_code == 404
    )
    queued = event_body()
    assert archived.post("/v1/events", json=queued, headers=AUTH).status_code == 202
    path = f"/v1/events/discord/{queued['event_id']}/review"
    response = archived.post(path, json=review, headers=AUTH)
    assert response.status_code == 409 and response.get_json()["error"] == "not_decided"
    assert (
        archived.post("/v1/events/discord/d1/review", json=review, headers=AUTH).status_code == 409
    )


def test_a_bad_review_gets_422_naming_each_field(archived: FlaskClient) -> None:
    body = {"label": "NICE", "reviewer": "", "extra": 1}
    response = archived.post("/v1/events/discord/h1/review", json=body, headers=AUTH)
    assert response.status_code == 422
    assert {e["field"] for e in response.get_json()["errors"]} == {"label", "reviewer", "extra"}


def test_bad_search_parameters_get_422_naming_each_field(archived: FlaskClient) -> None:
    query = "limit=501&since=2026-01-01T00:00:00&cursor=garbage&route=sideways&colour=red"
    response = archived.get(f"/v1/decisions?{query}", headers=AUTH)
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"limit", "since", "cursor", "route", "colour"}


def test_search_filters_and_pages(archived: FlaskClient) -> None:
    page = archived.get("/v1/decisions?limit=2", headers=AUTH).get_json()
    assert [d["event_id"] for d in page["decisions"]] == ["h1", "d1"]
    rest = archived.get(f"/v1/decisions?cursor={page['next_cursor']}", headers=AUTH).get_json()
    assert [d["event_id"] for d in rest["decisions"]] == ["l1"] and rest["next_cursor"] is None
    high = archived.get("/v1/decisions?route=high&category=TOXIC", headers=AUTH).get_json()
    assert [d["event_id"] for d in high["decisions"]] == ["h1"]
    assert high["decisions"][0]["decision"]["category"] == "TOXIC"


def test_a_users_history_has_counts_recent_decisions_and_posting_rate(
    archived: FlaskClient,
) -> None:
    response = archived.get("/v1/users/discord/u-1", headers=AUTH)
    assert response.status_code == 200
    report = UserHistoryReport.model_validate(response.get_json())
    assert report.counts["24h"].total == 2 and report.counts["24h"].dead_lettered == 1
    assert report.counts["all"].by_route == {"high": 1, "low": 1}
    assert [e.event_id for e in report.recent] == ["h1", "d1", "l1"]
    assert report.posting_rate.posts_last_minute == 0
    assert archived.get("/v1/users/discord/nobody", headers=AUTH).status_code == 404


def test_without_an_archive_the_endpoints_answer_503(redis_url: str) -> None:
    client = make_app(redis_url).test_client()
    response = client.get("/v1/decisions", headers=AUTH)
    assert response.status_code == 503 and response.get_json()["error"] == "archive_unavailable"
