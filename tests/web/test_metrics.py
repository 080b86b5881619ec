"""``/metrics`` of a real server on 127.0.0.1 (SQLite and PostgreSQL): off by default, behind its bearer token,
parsed with prometheus_client's text parser, and its figures move when two real WebSocket participants join,
relay an offer and leave, when a webhook delivery fails and when a request is rate limited."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from herewith.config import Settings
from tests.signaling.helpers import Client
from tests.support.servers import ThreadServer, create_org_key

FUTURE = "2099-02-18T14:23:00.000Z"
TOKEN = "scrape-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (sample name, sorted labels), through the Prometheus parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_: dict, name: str, **labels: str) -> float:
    return all_.get((name, tuple(sorted(labels.items()))), 0.0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def metrics_server(tmp_path: Path, database_url: str | None) -> Iterator[ThreadServer]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="m" * 32,
                        metrics_enabled=True, metrics_token=TOKEN, webhook_allow_private_targets=True,
                        webhook_poll_seconds=0.2, webhook_retry_base_seconds=30)
    srv = ThreadServer(settings).start()
    yield srv
    srv.stop()


async def scrape(web: httpx.AsyncClient) -> dict:
    r = await web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return samples(r.text)


async def wait_for(web: httpx.AsyncClient, check, what: str, timeout: float = 15.0) -> dict:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await scrape(web)
        if check(got):
            return got
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_metrics_are_off_by_default(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as web:
        r = await web.get("/metrics")
    assert r.status_code == 404
    assert r.json() == {"error": "The requested resource doesn't exist"}


async def test_metrics_move_with_participants_webhooks_and_limits(metrics_server: ThreadServer) -> None:
    srv = metrics_server
    org = await create_org_key(srv.settings, "Metrics org", plan="build")  # 100 points a minute
    async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as web:
        # the token is required, and compared whole
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = await web.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.json()["error"], r.text
        before = await scrape(web)

        # a webhook endpoint nobody listens on: every delivery attempt fails and the events stay queued
        r = await web.post("/v1/webhooks", headers=org.headers,
                           json={"url": f"http://127.0.0.1:{closed_port()}/hook", "events": ["room.client.joined"]})
        assert r.status_code == 201, r.text
        r = await web.post("/v1/meetings", headers=org.headers, json={"endDate": FUTURE})
        assert r.status_code == 201, r.text
        room = r.json()["roomName"]

        async with Client(srv.ws_url, room) as ann, Client(srv.ws_url, room) as bob:
            await ann.send({"type": "join", "displayName": "Ann"})
            ann_id = (await ann.expect("joined"))["participantId"]
            await bob.send({"type": "join", "displayName": "Bob"})
            await bob.expect("joined")
            await ann.expect("participant_joined")
            await bob.send({"type": "offer", "to": ann_id, "sdp": "v=0\r\n"})
            await ann.expect("offer")
            during = await scrape(web)
            assert value(during, "herewith_participants_live", mode="normal", role="visitor") == 2
            assert value(during, "herewith_rooms_live", mode="normal") >= 1
            assert value(during, "herewith_signaling_connections") >= 2
            for who in (ann, bob):
                await who.send({"type": "leave"})
        after = await wait_for(web, lambda s: value(s, "herewith_participants_live", mode="normal", role="visitor") == 0,
                               "the participants to leave")

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("herewith_participants_joined_total", mode="normal", role="visitor") == 2
        assert delta("herewith_participants_left_total", mode="normal", role="visitor") == 2
        assert delta("herewith_signaling_messages_total", type="join") == 2
        assert delta("herewith_signaling_messages_total", type="offer") == 1
        assert delta("herewith_signaling_relay_seconds_count", type="offer") == 1
        assert value(after, "herewith_signaling_relay_seconds_bucket", type="offer", le="+Inf") >= 1
        assert delta("herewith_http_request_duration_seconds_count", method="POST", route="/v1/meetings",
                     status="201") == 1
        assert value(after, "herewith_http_request_duration_seconds_count", method="GET", route="/metrics", status="401") >= 3
        assert value(after, "process_resident_memory_bytes") > 0

        # two room.client.joined events for an endpoint that refuses connections: attempts fail, they wait
        # (the queue figures are read again at most every 5 s: web.metrics.WEBHOOK_REFRESH_SECONDS)
        def queued(s: dict) -> bool:
            failed = value(s, "herewith_webhook_delivery_attempts_total", outcome="failed") - \
                value(before, "herewith_webhook_delivery_attempts_total", outcome="failed")
            depth = value(s, "herewith_webhook_queue_depth", state="pending") + \
                value(s, "herewith_webhook_queue_depth", state="sending")
            return failed >= 1 and depth == 2 and value(s, "herewith_webhook_oldest_pending_age_seconds") > 0

        got = await wait_for(web, queued, "a failed webhook delivery and two queued events")
        assert 0 <= value(got, "herewith_webhook_queue_stats_age_seconds") < 15

        # past the build plan's 100 points: 429s are counted
        refused = 0
        for _ in range(110):
            r = await web.get("/v1/meetings", headers=org.headers)
            refused += r.status_code == 429
        assert refused >= 1
        got = await scrape(web)
        assert value(got, "herewith_rate_limit_refusals_total", scope="api") - \
            value(before, "herewith_rate_limit_refusals_total", scope="api") == refused
        assert value(got, "herewith_http_request_duration_seconds_count", method="GET", route="/v1/meetings",
                     status="429") >= refused
        # no Janus here (HEREWITH_JANUS=off in tests), no recording running
        assert not any(name == "herewith_janus_up" for name, _ in got)
        assert value(got, "herewith_recordings_running", state="recording") == 0
