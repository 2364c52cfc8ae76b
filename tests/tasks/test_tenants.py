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
    finally:
        web.stop()
        stack.processes.stop_all()
