"""The moderators' console over the app: sign-in, sessions, CSRF, headers, tenants, escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import redis
from flask.testing import FlaskClient

from core.archive import DecisionWriter, open_archive
from core.models import Category, Neighbor, RuleFlag
from tests.factories import (
    API_KEY,
    RIVAL_ENTRY,
    RIVAL_KEY,
    decision,
    entry_fields,
    make_app,
    now,
    rows_of,
)
from webapp.routes import ROUTES

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)"> \u202eevil\u202c ' + "w" * 10_000


def csrf_of(html: str) -> str:
    """The CSRF token a page carries."""
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, key: str = API_KEY, name: str = "mod-1") -> FlaskClient:
    """Sign the client in through the form, as a browser would."""
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    answer = client.post(
        "/console/sign-in", data={"api_key": key, "moderator": name, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


@pytest.fixture()
def console(redis_url: str, database_url: str) -> FlaskClient:
    """A console client of an app with two tenants, whose archive holds a receipt of each."""
    engine = open_archive(database_url)
    moment = now()
    receipt = decision("h1", route="high", category=Category.TOXIC).model_copy(
        update={
            "flags": [
                RuleFlag(id="insult", category=Category.TOXIC, weight=1.5, evidence=["idiot"])
            ],
            "similar": [Neighbor(id="ref-42", label=Category.TOXIC, similarity=0.81)],
            "signals": {"rules": 1.9, "head": 0.7, "bias": -0.4},
        }
    )
    DecisionWriter(engine).write(
        rows_of(
            ("high", entry_fields("h1", accepted=moment, route="high", category=Category.TOXIC,
                                  content="you are an idiot", receipt=receipt)),
            ("high", entry_fields("x1", accepted=moment - timedelta(minutes=1), route="high",
                                  category=Category.TOXIC, content=XSS, seq=1)),
            ("low", entry_fields("l1", accepted=moment - timedelta(days=2), seq=2)),
            ("high", entry_fields("r1", accepted=moment, route="high", category=Category.SPAM,
                                  content="rival's secret", user_id="r-user", tenant="rival")),
        )
    )  # fmt: skip
    engine.dispose()
    app = make_app(redis_url, database_url=database_url, api_keys=[API_KEY, RIVAL_ENTRY])
    return app.test_client()


def test_pages_need_a_session_and_send_the_sign_in_form_otherwise(console: FlaskClient) -> None:
    for path in ("/console/", "/console/decisions/discord/h1", "/console/users/discord/u-1"):
        answer = console.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console/sign-in"
    assert console.get("/console/rows").status_code == 401
    assert console.get("/console/", headers={"X-API-Key": API_KEY}).status_code == 303


def test_a_wrong_key_is_refused_and_a_right_one_gives_a_strict_session_cookie(
    console: FlaskClient,
) -> None:
    token = csrf_of(console.get("/console/sign-in").get_data(as_text=True))
    wrong = {"api_key": "nope", "moderator": "m", "csrf_token": token}
    assert console.post("/console/sign-in", data=wrong).status_code == 401
    assert console.get("/console/").status_code == 303
    right = wrong | {"api_key": API_KEY}
    answer = console.post("/console/sign-in", data=right)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS requests get Secure
    assert API_KEY not in cookie
    assert console.get("/console/").status_code == 200


def test_the_cookie_is_secure_when_the_request_is_https(console: FlaskClient) -> None:
    page = console.get("/console/sign-in", base_url="https://localhost")
    assert "Secure" in page.headers["Set-Cookie"]


def test_every_post_without_the_sessions_csrf_token_is_refused(console: FlaskClient) -> None:
    form = {"api_key": API_KEY, "moderator": "m"}
    assert console.post("/console/sign-in", data=form).status_code == 403
    sign_in(console)
    review = {"label": "LOW_RISK"}
    path = "/console/decisions/discord/h1/review"
    assert console.post(path, data=review).status_code == 403
    assert console.post(path, data=review | {"csrf_token": "forged"}).status_code == 403
    assert console.post(path, data=review, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert console.post("/console/sign-out").status_code == 403
    assert (
        console.get("/console/decisions/discord/h1").get_data(as_text=True).count("overturned") == 0
    )


def test_every_console_answer_carries_its_csp_and_nosniff(console: FlaskClient) -> None:
    anonymous = [console.get("/console/sign-in"), console.get("/console/"),
                 console.get("/console/assets/console.js"), console.get("/console/assets/nope"),
                 console.get("/console/nowhere"), console.post("/console/sign-out")]  # fmt: skip
    sign_in(console)
    signed = [console.get(path) for path in (
        "/console/", "/console/rows", "/console/decisions/discord/h1", "/console/users/discord/u-1",
        "/console/decisions/discord/missing", "/console/users/discord/nobody",
    )]  # fmt: skip
    for answer in anonymous + signed:
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy, answer.request.path
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert [a.status_code for a in signed] == [200, 200, 200, 200, 404, 404]


def test_the_script_and_style_sheet_are_served_from_the_package(console: FlaskClient) -> None:
    script = console.get("/console/assets/console.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert console.get("/console/assets/console.css").mimetype == "text/css"
    assert console.get("/console/assets/..%2Fviews.py").status_code == 404


def test_the_queue_shows_the_tenants_high_risk_decisions_newest_first_with_counts(
    console: FlaskClient,
) -> None:
    html = sign_in(console).get("/console/").get_data(as_text=True)
    assert html.index("/console/decisions/discord/h1") < html.index("/console/decisions/discord/x1")
    assert "/console/decisions/discord/l1" not in html  # low risk: not in the default queue
    assert re.search(r'<span class="n">2</span> TOXIC', html)
    spam = console.get("/console/?category=SPAM").get_data(as_text=True)
    assert "discord/h1" not in spam and re.search(r'<span class="n">2</span> TOXIC', spam)
    assert 'href="/console/?platform=&amp;category=SPAM&amp;route=high' in spam
    low = console.get("/console/?route=low").get_data(as_text=True)
    assert "/console/decisions/discord/l1" in low and "discord/h1" not in low


def test_the_queue_pages_with_a_cursor(console: FlaskClient) -> None:
    sign_in(console)
    first = console.get("/console/?route=").get_data(as_text=True)
    assert "Older decisions" not in first
    from webapp.console import views

    views.PAGE_SIZE, size = 1, views.PAGE_SIZE
    try:
        html = console.get("/console/?route=").get_data(as_text=True)
        [link] = re.findall(r'href="(/console/\?[^"]*cursor=[^"]+)"', html)
        second = console.get(link.replace("&amp;", "&")).get_data(as_text=True)
    finally:
        views.PAGE_SIZE = size
    assert "discord/h1" in html and "discord/x1" in second and "discord/h1" not in second


def test_a_tenants_moderator_sees_and_reviews_only_its_own_decisions(console: FlaskClient) -> None:
    sign_in(console)
    assert "rival" not in console.get("/console/?route=").get_data(as_text=True)
    assert console.get("/console/decisions/discord/r1").status_code == 404
    assert console.get("/console/users/discord/r-user").status_code == 404
    token = csrf_of(console.get("/console/").get_data(as_text=True))
    answer = console.post(
        "/console/decisions/discord/r1/review", data={"label": "LOW_RISK", "csrf_token": token}
    )
    assert answer.status_code == 404
    rival = sign_in(console.application.test_client(), RIVAL_KEY)
    assert "rival&#39;s secret" in rival.get("/console/decisions/discord/r1").get_data(as_text=True)
    assert rival.get("/console/decisions/discord/h1").status_code == 404


def test_hostile_content_is_shown_as_text(console: FlaskClient) -> None:
    sign_in(console)
    for path in ("/console/", "/console/decisions/discord/x1", "/console/users/discord/u-1"):
        html = console.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        # No script of the page is inline: every script comes from the console's own file.
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/console/assets/console.js" defer>'
        ]


def test_the_decision_page_shows_the_receipt(console: FlaskClient) -> None:
    html = sign_in(console).get("/console/decisions/discord/h1").get_data(as_text=True)
    assert "you are an <mark>idiot</mark>" in html
    assert "<code>insult</code>" in html and "ref-42" in html and "0.81" in html
    assert html.count("<rect") == 3 and "+1.900" in html and "63%" in html  # 1.9 of 3.0
    assert 'class="action action-allow"' in html


def test_a_review_from_the_console_is_the_apis_review_and_reaches_the_workers(
    console: FlaskClient, redis_client: redis.Redis
) -> None:
    sign_in(console, name="Ana")
    token = csrf_of(console.get("/console/decisions/discord/h1").get_data(as_text=True))
    answer = console.post(
        "/console/decisions/discord/h1/review",
        data={"label": "LOW_RISK", "note": "banter"},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["published"] is True and body["review"]["reviewer"] == "Ana"
    assert body["review"]["overturn"] is True and body["applies_from"]
    [(_, label)] = redis_client.xrange("events:labels")
    assert label[b"label"] == b"LOW_RISK" and label[b"tenant"] == b"default"
    page = console.get("/console/decisions/discord/h1").get_data(as_text=True)
    assert "Reviewed as" in page and "(overturned)" in page
    reviews = console.get("/v1/users/discord/u-1", headers={"X-API-Key": API_KEY}).get_json()
    assert [(r["label"], r["note"]) for r in reviews["reviews"]] == [("LOW_RISK", "banter")]


def test_a_form_review_without_script_goes_back_to_the_decision(console: FlaskClient) -> None:
    sign_in(console)
    token = csrf_of(console.get("/console/").get_data(as_text=True))
    path = "/console/decisions/discord/h1/review"
    answer = console.post(path, data={"label": "TOXIC", "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == path[: -len("/review")]
    bad = console.post(path, data={"label": "NICE", "csrf_token": token})
    assert bad.status_code == 422


def test_the_user_page_shows_history_counts_and_a_daily_chart(console: FlaskClient) -> None:
    html = sign_in(console).get("/console/users/discord/u-1").get_data(as_text=True)
    assert "Decisions per day, last 14 days" in html
    assert html.count('class="up"><title>') == 14 and "2 high</title>" in html
    assert "1 low</title>" in html  # l1, two days ago


def test_signing_out_ends_the_session(console: FlaskClient) -> None:
    sign_in(console)
    token = csrf_of(console.get("/console/").get_data(as_text=True))
    assert console.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
    assert console.get("/console/").status_code == 303


def test_a_session_ends_when_its_key_is_removed(redis_url: str, database_url: str) -> None:
    settings = {"database_url": database_url, "console_secret_key": "s" * 32}
    before = make_app(redis_url, **settings).test_client()
    sign_in(before)
    cookie = before.get_cookie("console_session", path="/console")
    assert cookie is not None
    after = make_app(redis_url, api_keys=["another-key"], **settings).test_client()
    after.set_cookie("console_session", cookie.value, path="/console")
    assert after.get("/console/").status_code == 303


def test_the_console_is_left_out_of_the_api_document(console: FlaskClient) -> None:
    paths = console.get("/openapi.json").get_json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
    assert any(route.console for route in ROUTES)
