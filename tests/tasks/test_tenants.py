"""Two tenants on a live stack (gunicorn, beat, pipeline and screening workers): each gets its
own events, decisions and lookups, whatever ids the other uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.pipeline import wait_until
from devtools.web_server import GunicornServer
from tests.factories import Pipeline, event_body

pytestmark = pytest.mark.slow

ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}


def test_two_tenants_sharing_event_ids_each_get_their_own_decisions(
    redis_url: str, pipeline_var: Path, tmp_path: Path
) -> None:
    stack = Pipeline(
        redis_url, pipeline_var, tmp_path / "logs", api_keys="acme:acme-key,globex:globex-key"
    )
    web = GunicornServer(redis_url, tmp_path / "web", **stack.env)
    web.start()
    try:
        stack.start_workers()
        shared = [f"shared-{i}" for i in range(6)]
        acme = [
            event_body(event_id=i, content=f"I will find you and kill you #{i}") for i in shared
        ]
        globex = [event_body(event_id=i, content=f"lovely weather today #{i}") for i in shared]
        only_acme = event_body(event_id="acme-only", content="see you at lunch")
        status, answer = web.request("POST", "/v1/events/batch", {"events": globex}, GLOBEX)
        assert status == 200 and answer["counts"] == {"accepted": 6}  # globex went first
        status, answer = web.request(
            "POST", "/v1/events/batch", {"events": [*acme, only_acme]}, ACME
        )
        assert status == 200 and answer["counts"] == {"accepted": 7}  # and blocked nothing
        wait_until(lambda: stack.settled(13), 180, "13 decisions\n" + stack.logs())

        for event_id in shared:
            path = f"/v1/events/discord/{event_id}"
            _, mine = web.request("GET", path, headers=ACME)
            _, theirs = web.request("GET", path, headers=GLOBEX)
            assert mine["state"] == theirs["state"] == "screened"
            assert (mine["tenant"], mine["decision"]["tenant"]) == ("acme", "acme")
            assert (theirs["tenant"], theirs["decision"]["tenant"]) == ("globex", "globex")
            assert mine["decision"]["route"] == "high" and theirs["decision"]["route"] == "low"
            assert mine["stream_id"] != theirs["stream_id"]
        assert web.request("GET", "/v1/events/discord/acme-only", headers=GLOBEX)[0] == 404
        assert web.request("GET", "/v1/events/discord/acme-only", headers=ACME)[0] == 200

        high = stack.redis.xrange(stack.stream.keys.high_stream)
        low = stack.redis.xrange(stack.stream.keys.low_stream)
        assert {f[b"tenant"] for _, f in high} == {b"acme"}
        assert {f[b"tenant"] for _, f in low} == {b"acme", b"globex"}

        status, screened = web.request(
            "POST", "/v1/screen", {"texts": ["you are an idiot"]}, GLOBEX
        )
        assert status == 200 and screened["decisions"][0]["tenant"] == "globex"

        # One tenant's senders never make another tenant's content look like a campaign:
        # globex screens one text as five senders' events (which stores nothing) and posts
        # another from five senders, then acme sends each text once.
        asked = "come over to my place this weekend, everyone is welcome"
        posted = "the new bakery on the corner sells the best bread in town"
        for i in range(5):
            body = event_body(event_id=f"asked-{i}", user_id=f"g{i}", content=asked)
            assert web.request("POST", "/v1/screen", body, GLOBEX)[0] == 200
        wave = [event_body(event_id=f"wave-{i}", user_id=f"g{i}", content=posted) for i in range(5)]
        assert web.request("POST", "/v1/events/batch", {"events": wave}, GLOBEX)[0] == 200
        wait_until(lambda: stack.settled(18), 180, "18 decisions\n" + stack.logs())
        mine = [event_body(event_id=f"acme-{i}", user_id="a1", content=t) for i, t in
                enumerate((asked, posted))]  # fmt: skip
        assert web.request("POST", "/v1/events/batch", {"events": mine}, ACME)[0] == 200
        wait_until(lambda: stack.settled(20), 180, "20 decisions\n" + stack.logs())

        def repeated(event_id: str, headers: dict[str, str]) -> bool:
            _, state = web.request("GET", f"/v1/events/discord/{event_id}", headers=headers)
            return "repeat_across_senders" in {f["id"] for f in state["decision"]["flags"]}

        assert any(repeated(f"wave-{i}", GLOBEX) for i in range(5))  # within globex it fires
        assert not repeated("acme-0", ACME) and not repeated("acme-1", ACME)
    finally:
        web.stop()
        stack.processes.stop_all()
