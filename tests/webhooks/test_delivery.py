"""Delivery: retries with backoff driven by the clock, timeouts, give-up after the window, nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from herewith.config import Settings
from herewith.webhooks.delivery import retry_delay
from herewith.webhooks.signing import verify_signature
from tests.webhooks.helpers import Receiver, Room, await_for, person


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, sweeper_interval_seconds=0.1, webhook_poll_seconds=0.05,
                    webhook_timeout_seconds=0.5, webhook_allow_private_targets=True)


async def _deliveries(client, webhook_id):
    out, cursor = [], None
    while True:
        page = (await client.get(f"/webhooks/{webhook_id}/deliveries",
                                 params={"limit": 100, **({"cursor": cursor} if cursor else {})})).json()
        out += page["results"]
        cursor = page["cursor"]
        if not cursor:
            return out


def test_backoff_is_exponential_and_capped():
    s = Settings(webhook_retry_base_seconds=5, webhook_retry_max_interval_seconds=3600)
    assert [retry_delay(s, n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(s, 20) == 3600


async def test_receiver_down_for_a_while_then_every_event_arrives(client, server, org):
    receiver = Receiver()  # not started: connection refused
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    room = Room(server, meeting, org.organization_id)
    a, b = room.join(person("Ann", "host")), room.join(person("Bob"))
    room.knock(person("Kim"))
    room.leave(a)
    room.leave(b)
    # The endpoint is held after each failure (5 s, 10 s, 20 s): one attempt per interval, not one per event.
    for n, step in enumerate((0, 6, 11, 21), start=1):
        server.clock.advance(step)
        await await_for(lambda: _count_sync(server, hook) >= n, timeout=20)
        await asyncio.sleep(0.3)
        assert _count_sync(server, hook) == n
    log = await _deliveries(client, hook["webhookId"])
    assert all(not d["succeeded"] and d["statusCode"] is None and d["error"] == "connection refused" for d in log)
    receiver.start()
    try:
        server.clock.advance(41)
        # The grace period passed meanwhile (79 s > 60 s): session.ended joins the six queued events.
        await await_for(lambda: len(receiver.received) >= 7, timeout=20)
        types = receiver.types()
        assert sorted(types) == sorted(["room.client.joined", "room.client.joined", "room.session.started",
                                        "room.client.knocked", "room.client.left", "room.client.left",
                                        "room.session.ended"])
        for r in receiver.received:
            assert verify_signature(hook["secret"], r.headers["Whereby-Signature"], r.body)
        ids = {e["id"] for e in receiver.events()}
        assert len(ids) == 7
        # The receiver has the requests before the worker has written their outcome: wait for the log.
        for _ in range(200):
            log = await _deliveries(client, hook["webhookId"])
            ok = [d for d in log if d["succeeded"]]
            if len(ok) >= 7:
                break
            await asyncio.sleep(0.05)
        assert {d["eventId"] for d in ok} == ids
        assert len(log) == 4 + 7 and sum(d["attempt"] for d in ok) == 7 + 4  # the 4 failures were probes
        # Nothing more is sent once delivered.
        server.clock.advance(3600)
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 7
    finally:
        receiver.stop()


def _count_sync(server, hook) -> int:
    from sqlalchemy import func, select

    from herewith.webhooks.models import WebhookDelivery

    async def count() -> int:
        async with server.services.sessionmaker() as s:
            return await s.scalar(select(func.count()).select_from(WebhookDelivery)
                                  .where(WebhookDelivery.endpoint_id == hook["webhookId"]))

    return server.run_coro(count())


async def test_errors_and_timeouts_are_retried_with_the_same_event_id(client, server, org):
    receiver = Receiver(status=500).start()
    try:
        hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
        meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
        Room(server, meeting, org.organization_id).knock(person("Kim"))
        await await_for(lambda: len(receiver.received) == 1)
        receiver.status, receiver.delay = 200, 1.0  # answers after the 0.5 s timeout
        server.clock.advance(6)
        await await_for(lambda: _count_sync(server, hook) >= 2)
        receiver.delay = 0
        server.clock.advance(11)
        await await_for(lambda: _count_sync(server, hook) >= 3)
        log = sorted(await _deliveries(client, hook["webhookId"]), key=lambda d: d["attempt"])
        assert [d["statusCode"] for d in log] == [500, None, 200]
        assert "timeout" in log[1]["error"] and log[0]["error"] == "HTTP 500" and log[2]["succeeded"]
        assert len({r.body for r in receiver.received}) == 1  # same event id and bytes on every attempt
    finally:
        receiver.stop()


async def test_gives_up_after_the_retry_window(client, server, org):
    receiver = Receiver()
    hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
    meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
    Room(server, meeting, org.organization_id).knock(person("Kim"))
    await await_for(lambda: _count_sync(server, hook) >= 1)
    attempts = 1
    # March through the schedule: 5 s doubling, capped at 1 h, for 24 h.
    for _ in range(60):
        server.clock.advance(3601)
        await await_for(lambda: _count_sync(server, hook) > attempts or _state(server, hook) == "failed")
        attempts = _count_sync(server, hook)
        if _state(server, hook) == "failed":
            break
    assert _state(server, hook) == "failed"
    assert 20 <= attempts <= 30
    server.clock.advance(7 * 24 * 3600)
    import asyncio

    await asyncio.sleep(0.3)
    assert _count_sync(server, hook) == attempts


def _state(server, hook) -> str:
    from sqlalchemy import select

    from herewith.webhooks.models import WebhookEvent

    async def get() -> str:
        async with server.services.sessionmaker() as s:
            return await s.scalar(select(WebhookEvent.state).where(WebhookEvent.endpoint_id == hook["webhookId"]))

    return server.run_coro(get())


async def _claim_fixture(settings, endpoints: int, events_each: int):
    """An organization with ``endpoints`` endpoints (on 127.0.0.1:9, never contacted) and ``events_each``
    queued events per endpoint; returns ``(engine, sessionmaker, now, endpoint ids)``."""
    from datetime import datetime, timezone

    from herewith.db.engine import create_engine, create_sessionmaker
    from herewith.webhooks import service
    from herewith.webhooks.schemas import CreateWebhookRequest
    from herewith.webhooks.targets import TargetPolicy
    from tests.support.servers import create_org_key

    org = await create_org_key(settings, "Workers")
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    now = datetime.now(timezone.utc)
    policy = TargetPolicy(allow_private=True)
    async with maker() as s:
        ids = [(await service.create_endpoint(s, org.organization_id, CreateWebhookRequest(url=f"http://127.0.0.1:9/{i}"),
                                              now, policy)).id for i in range(endpoints)]
        for i in range(events_each):
            await service.enqueue(s, org.organization_id, "room.client.knocked", {"n": i}, now)
        await s.commit()
    return engine, maker, now, ids


async def test_two_workers_claim_disjoint_events(settings, db_kind):
    """PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the conditional claim. Either way no event is taken twice."""
    from herewith.webhooks.delivery import claim_due

    engine, maker, now, endpoint_ids = await _claim_fixture(settings, endpoints=5, events_each=1)
    try:
        small = settings.model_copy(update={"webhook_batch_size": 3})
        if db_kind == "postgresql":
            async with maker() as first, maker() as second:
                got1 = await claim_due(first, now, small)  # holds its rows locked until commit
                got2 = await claim_due(second, now, small)  # skips them
                await first.commit()
                await second.commit()
        else:
            async with maker() as first:
                got1 = await claim_due(first, now, small)
                await first.commit()
            async with maker() as second:
                got2 = await claim_due(second, now, small)  # the first batch is leased: not due any more
                await second.commit()
        ids1, ids2 = {c.webhook_event_id for c in got1}, {c.webhook_event_id for c in got2}
        assert len(ids1) == 3 and len(ids2) == 2 and not ids1 & ids2
        assert {c.endpoint_id for c in got1 + got2} == set(endpoint_ids)
        assert all(c.attempt == 1 for c in got1 + got2)
        async with maker() as third:
            assert await claim_due(third, now, small) == []  # all leased
    finally:
        await engine.dispose()


@pytest.mark.parametrize("per_endpoint", [1, 2])
async def test_an_endpoint_has_at_most_n_in_flight_across_workers(settings, db_kind, per_endpoint):
    """One endpoint with five due events: workers together hold at most ``webhook_max_in_flight_per_endpoint``
    of them, the oldest first; a recorded outcome frees the place for the next one."""
    from herewith.webhooks.delivery import Outcome, claim_due, record

    engine, maker, now, _ = await _claim_fixture(settings, endpoints=1, events_each=5)
    try:
        cfg = settings.model_copy(update={"webhook_max_in_flight_per_endpoint": per_endpoint})
        if db_kind == "postgresql":
            async with maker() as first, maker() as second:
                got1 = await claim_due(first, now, cfg)
                got2 = await claim_due(second, now, cfg)  # the same rows are locked: skipped
                await first.commit()
                await second.commit()
        else:
            async with maker() as first:
                got1 = await claim_due(first, now, cfg)
                await first.commit()
            async with maker() as second:
                got2 = await claim_due(second, now, cfg)
                await second.commit()
        assert [_n(c) for c in got1] == list(range(per_endpoint)) and got2 == []
        async with maker() as s:
            assert await claim_due(s, now, cfg) == []  # the endpoint's places are taken
        async with maker() as s:
            await record(s, got1[0], Outcome(200, None, "ok", 3), now, cfg)
            await s.commit()
        async with maker() as s:
            got3 = await claim_due(s, now, cfg)
            await s.commit()
        assert [_n(c) for c in got3] == [per_endpoint]  # the next in event order
    finally:
        await engine.dispose()


def _n(claimed) -> int:
    import json

    return json.loads(claimed.payload)["data"]["n"]


async def test_a_lease_that_runs_out_is_claimed_again(settings):
    """A worker that died mid-send: once its lease (timeout + slack) runs out, the event is taken again (the
    same event, next attempt number)."""
    from datetime import timedelta

    from herewith.webhooks.delivery import claim_due

    engine, maker, now, _ = await _claim_fixture(settings, endpoints=1, events_each=1)
    try:
        async with maker() as s:
            (first,) = await claim_due(s, now, settings)
            await s.commit()
        lease = settings.webhook_timeout_seconds + settings.webhook_lease_slack_seconds
        async with maker() as s:
            assert await claim_due(s, now + timedelta(seconds=lease - 1), settings) == []
        async with maker() as s:
            (again,) = await claim_due(s, now + timedelta(seconds=lease + 1), settings)
            await s.commit()
        assert again.webhook_event_id == first.webhook_event_id and again.attempt == 2
    finally:
        await engine.dispose()


async def test_old_events_and_their_log_are_purged_after_the_retention(client, server, org):
    receiver = Receiver().start()
    try:
        hook = (await client.post("/webhooks", json={"url": receiver.url})).json()
        meeting = (await client.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"})).json()
        Room(server, meeting, org.organization_id).knock(person("Kim"))
        await await_for(lambda: _count_sync(server, hook) == 1)
        server.clock.advance(29 * 86400)
        import asyncio

        await asyncio.sleep(0.4)
        assert _count_sync(server, hook) == 1
        server.clock.advance(2 * 86400)
        await await_for(lambda: _count_sync(server, hook) == 0)
        assert _state(server, hook) is None
    finally:
        receiver.stop()


async def test_a_failure_holds_the_endpoints_other_events_and_fails_those_past_their_window(settings):
    """record() after a failed attempt: the endpoint's waiting events are not due before its backoff, the
    failed event goes behind them, and an event whose retry window ended while the endpoint failed is failed."""
    from datetime import timedelta

    from sqlalchemy import select

    from herewith.webhooks.delivery import BEHIND, Outcome, claim_due, record
    from herewith.webhooks.models import WebhookEvent

    engine, maker, now, _ = await _claim_fixture(settings, endpoints=1, events_each=3)
    try:
        async with maker() as s:
            (first,) = await claim_due(s, now, settings)
            await s.commit()
        async with maker() as s:
            held = await record(s, first, Outcome(None, "timeout", None, 5000), now, settings, failures_before=2)
            await s.commit()
        assert held == now + timedelta(seconds=20)  # the endpoint's third failure in a row: 5 s * 2**2
        async with maker() as s:
            rows = (await s.scalars(select(WebhookEvent).order_by(WebhookEvent.seq))).all()
        assert [r.state for r in rows] == ["pending"] * 3
        assert rows[0].next_attempt_at == held + BEHIND and [r.next_attempt_at for r in rows[1:]] == [held, held]
        async with maker() as s:
            assert await claim_due(s, held - timedelta(seconds=1), settings) == []
            (second,) = await claim_due(s, held, settings)
            await s.commit()
        assert second.webhook_event_id == rows[1].id  # the others first, in event order
        past_window = now + timedelta(seconds=settings.webhook_retry_window_seconds + 1)
        async with maker() as s:
            await record(s, second, Outcome(500, "HTTP 500", "", 3), past_window, settings)
            await s.commit()
        async with maker() as s:
            states = (await s.scalars(select(WebhookEvent.state).order_by(WebhookEvent.seq))).all()
        assert states == ["failed", "failed", "failed"]  # tried or not, their windows ended while it failed
    finally:
        await engine.dispose()
