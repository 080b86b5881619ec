"""Delivery isolation between endpoints (herewith.webhooks.delivery): one organization's hanging or failing
receiver does not delay another's events; at most N requests in flight per endpoint, in event order; a bounded
pool; a failing endpoint held on its own schedule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from herewith.config import Settings
from tests.support.servers import ThreadServer, create_org_key
from tests.webhooks.helpers import Receiver, await_for


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """The product's 5 s delivery timeout: a hanging receiver holds each attempt that long."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                    background_tasks=True, sweeper_interval_seconds=0.1, webhook_poll_seconds=0.1,
                    webhook_timeout_seconds=5.0, webhook_allow_private_targets=True)


def _endpoint(server: ThreadServer, organization_id: str, url: str) -> str:
    async def go() -> str:
        from herewith.webhooks import service
        from herewith.webhooks.schemas import CreateWebhookRequest
        from herewith.webhooks.targets import TargetPolicy

        async with server.services.sessionmaker() as s:
            endpoint = await service.create_endpoint(s, organization_id, CreateWebhookRequest(url=url),
                                                     server.clock.now(), TargetPolicy.from_settings(server.settings))
            await s.commit()
            return endpoint.id

    return server.run_coro(go())


def _enqueue(server: ThreadServer, organization_id: str, n: int, start: int = 0) -> None:
    """``n`` events (``data.n`` = start, start+1, ...) for every endpoint of the organization, then wake the worker."""
    async def go() -> None:
        from herewith.webhooks import service

        async with server.services.sessionmaker() as s:
            for i in range(start, start + n):
                await service.enqueue(s, organization_id, "room.client.knocked", {"n": i}, server.clock.now())
            await s.commit()
        server.services.webhook_wakeup.set()

    server.run_coro(go())


def _attempts(server: ThreadServer, endpoint_id: str) -> int:
    async def go() -> int:
        from sqlalchemy import func, select

        from herewith.webhooks.models import WebhookDelivery

        async with server.services.sessionmaker() as s:
            return await s.scalar(select(func.count()).select_from(WebhookDelivery)
                                  .where(WebhookDelivery.endpoint_id == endpoint_id))

    return server.run_coro(go())


@pytest.mark.timeout(60)
async def test_a_hanging_endpoint_does_not_delay_another_organizations_events(server):
    """Organization A's receiver never answers before the 5 s timeout and A has 20 events queued; B's event
    arrives within 2 s while A's attempt is still hanging (it took 100 s with rounds of 20, see
    bench/results/webhook_isolation_before.json)."""
    hanging = Receiver(delay=30).start()
    healthy = Receiver().start()
    try:
        org_a = await create_org_key(server.settings, "A")
        org_b = await create_org_key(server.settings, "B")
        _endpoint(server, org_a.organization_id, hanging.url)
        _endpoint(server, org_b.organization_id, healthy.url)
        _enqueue(server, org_a.organization_id, 20)
        await await_for(lambda: hanging.started >= 1, timeout=10)
        started = time.monotonic()
        _enqueue(server, org_b.organization_id, 1)
        await await_for(lambda: healthy.received, timeout=2.0)
        assert time.monotonic() - started < 2.0
        assert hanging.started == 1 and not hanging.received  # A's first attempt is still hanging, alone
        # B keeps flowing while A's next attempts hang in turn.
        for i in range(1, 4):
            _enqueue(server, org_b.organization_id, 1, start=i)
            await await_for(lambda: len(healthy.received) == i + 1, timeout=2.0)
        assert [e["data"]["n"] for e in healthy.events()] == [0, 1, 2, 3]
    finally:
        hanging.stop()
        healthy.stop()


@pytest.mark.parametrize("per_endpoint", [1, 2])
async def test_at_most_n_in_flight_per_endpoint_in_event_order(settings, per_endpoint):
    receiver = Receiver(delay=0.2).start()
    server = ThreadServer(settings.model_copy(update={"webhook_max_in_flight_per_endpoint": per_endpoint})).start()
    try:
        org = await create_org_key(server.settings, "Org")
        _endpoint(server, org.organization_id, receiver.url)
        _enqueue(server, org.organization_id, 8)
        await await_for(lambda: len(receiver.received) == 8, timeout=20)
        assert receiver.max_in_flight == per_endpoint
        order = [e["data"]["n"] for e in receiver.events()]
        if per_endpoint == 1:
            assert order == list(range(8))  # one at a time, in event order
        else:
            assert sorted(order) == list(range(8))
    finally:
        server.stop()
        receiver.stop()


async def test_the_pool_bounds_deliveries_in_flight(settings):
    """Six endpoints with a slow receiver and ``webhook_max_concurrent_deliveries=2``: two requests at a time."""
    receiver = Receiver(delay=0.3).start()
    server = ThreadServer(settings.model_copy(update={"webhook_max_concurrent_deliveries": 2})).start()
    try:
        org = await create_org_key(server.settings, "Org")
        for i in range(6):
            _endpoint(server, org.organization_id, f"{receiver.url}/{i}")
        started = time.monotonic()
        _enqueue(server, org.organization_id, 1)
        await await_for(lambda: len(receiver.received) == 6, timeout=20)
        assert receiver.max_in_flight == 2
        assert time.monotonic() - started >= 3 * 0.3
    finally:
        server.stop()
        receiver.stop()


async def test_a_failing_endpoint_is_held_on_its_own_schedule(server):
    """A's receiver answers 500: after its first failure A is held 5 s (one attempt per backoff interval, not
    one per queued event) while B's events go at once; when A answers again, every event of A arrives once."""
    failing = Receiver(status=500).start()
    healthy = Receiver().start()
    try:
        org_a = await create_org_key(server.settings, "A")
        org_b = await create_org_key(server.settings, "B")
        a = _endpoint(server, org_a.organization_id, failing.url)
        _endpoint(server, org_b.organization_id, healthy.url)
        _enqueue(server, org_a.organization_id, 5)
        await await_for(lambda: _attempts(server, a) == 1)
        _enqueue(server, org_b.organization_id, 3)
        await await_for(lambda: len(healthy.received) == 3, timeout=2.0)
        await asyncio.sleep(0.5)
        assert _attempts(server, a) == 1 and len(failing.received) == 1  # held: A's other events wait
        server.clock.advance(6)
        await await_for(lambda: _attempts(server, a) == 2)
        await asyncio.sleep(0.5)
        assert _attempts(server, a) == 2  # held again, now 10 s
        server.clock.advance(6)
        await asyncio.sleep(0.5)
        assert _attempts(server, a) == 2
        failing.status = 200
        server.clock.advance(5)
        await await_for(lambda: len({e["id"] for e in failing.events()}) == 5 and _attempts(server, a) == 7)
        ok = [e["data"]["n"] for e in failing.events()][2:]  # after the two failed probes
        assert sorted(ok) == list(range(5))
        never_tried = [n for n in ok if n not in [e["data"]["n"] for e in failing.events()[:2]]]
        assert never_tried == sorted(never_tried)  # first attempts in event order
    finally:
        failing.stop()
        healthy.stop()
