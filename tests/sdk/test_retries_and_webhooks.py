"""The SDK's retries and webhook verification against a real server: a 429 is sent again after its
``Retry-After`` (a small budget from the settings), and ``verify_webhook`` accepts a real delivery the server
signed and sent to a receiver on 127.0.0.1, and refuses it tampered, replayed late or checked with another
secret."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from herewith_client import AsyncHerewith, Herewith, RateLimitError, WebhookEvent, WebhookVerificationError, verify_webhook

from herewith.db.engine import create_engine, create_sessionmaker
from herewith.kit.crypto import hmac_sha256_hex
from herewith.ratelimit import service as ratelimit_service
from tests.signaling.helpers import Client
from tests.support.servers import ThreadServer, create_org_key
from tests.webhooks.helpers import Receiver, await_for

END = "2099-02-18T14:23:00.000Z"


@pytest.fixture
def limited_server(settings) -> Iterator[ThreadServer]:
    """A server whose sliding window is 3 s instead of 60, so a spent budget comes back within the test."""
    srv = ThreadServer(settings.model_copy(update={"ratelimit_window_seconds": 3.0, "redis_url": None})).start()
    yield srv
    srv.stop()


async def _limited_key(server: ThreadServer, points: int) -> str:
    org = await create_org_key(server.settings, "Small budget")
    engine = create_engine(server.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await ratelimit_service.set_limit(session, org.organization_id, points=points)
            await session.commit()
    finally:
        await engine.dispose()
    return org.api_key


async def test_429_is_retried_after_retry_after(limited_server: ThreadServer):
    key = await _limited_key(limited_server, points=3)
    seen: list[tuple[float, int, str | None]] = []

    def record(response: httpx.Response) -> None:
        seen.append((time.monotonic(), response.status_code, response.headers.get("Retry-After")))

    http = httpx.Client(event_hooks={"response": [record]}, timeout=30)
    with Herewith(base_url=limited_server.base_url, api_key=key, http_client=http, max_retries=3) as sdk:
        sdk.meetings.create(end_date=END)  # 3 points: the budget is spent
        for _ in range(10):  # 1 point each: throttled (unless the machine stalled past the window), then retried
            page = sdk.meetings.list()
            assert len(page.results) == 1  # every call came back with the answer, never with the 429
            if any(status == 429 for _, status, _ in seen):
                break
    http.close()
    statuses = [status for _, status, _ in seen]
    first = statuses.index(429)
    assert statuses[-1] == 200 and set(statuses[first:-1]) == {429}
    throttled_at, _, retry_after = seen[first]
    assert retry_after is not None and int(retry_after) >= 1
    assert seen[first + 1][0] - throttled_at >= int(retry_after) - 0.05  # waited as told before sending again

    # No retries allowed: the 429 itself, with the contract's body and the wait it asked for.
    async with AsyncHerewith(base_url=limited_server.base_url, api_key=key, max_retries=0) as strict:
        err = None
        for _ in range(3):  # the first create may still fit, if the window moved on meanwhile; the next cannot
            try:
                await strict.meetings.create(end_date=END)
            except RateLimitError as exc:
                err = exc
                break
    assert err is not None
    assert err.status_code == 429 and err.message.startswith("Rate limit active for throttle key: organization:")
    assert err.ms_left is not None and 0 < err.ms_left <= 3000 and err.retry_after is not None and err.retry_after >= 1
    # A Retry-After longer than the client will wait is raised at once, without sleeping through it.
    sent: list[httpx.Request] = []
    http_impatient = httpx.AsyncClient(event_hooks={"request": [lambda r: _append(sent, r)]})
    async with AsyncHerewith(base_url=limited_server.base_url, api_key=key, max_retries=3, max_retry_wait=0.001,
                             http_client=http_impatient) as impatient:
        with pytest.raises(RateLimitError):
            await impatient.meetings.create(end_date=END)
    await http_impatient.aclose()
    assert len(sent) == 1
    # The async client waits and sends again as the sync one does.
    async_statuses: list[int] = []
    http_async = httpx.AsyncClient(event_hooks={"response": [lambda r: _append(async_statuses, r.status_code)]})
    async with AsyncHerewith(base_url=limited_server.base_url, api_key=key, max_retries=3,
                             http_client=http_async) as patient:
        for _ in range(3):  # as above: until one was throttled on the way
            meeting = await patient.meetings.create(end_date=END)
            assert meeting.meetingId
            if 429 in async_statuses:
                break
    await http_async.aclose()
    assert 429 in async_statuses and async_statuses[-1] == 201


async def test_connection_errors_are_retried_then_raised():
    from herewith_client import APIConnectionError

    from tests.support.servers import free_port

    attempts: list[httpx.Request] = []
    http = httpx.AsyncClient(event_hooks={"request": [lambda r: _append(attempts, r)]})
    async with AsyncHerewith(base_url=f"http://127.0.0.1:{free_port()}", api_key="hw_x", max_retries=2,
                             http_client=http) as sdk:
        with pytest.raises(APIConnectionError):
            await sdk.meetings.create(end_date=END)  # nothing listens: refused three times
    await http.aclose()
    assert len(attempts) == 3


async def _append(items: list, item: object) -> None:
    items.append(item)


async def _check_insights(sdk: AsyncHerewith, room_name: str) -> None:
    """The insights resources parse the server's answers about a live room session of Ann and Bob."""
    rooms = [r async for r in sdk.insights.rooms(room_name=room_name)]
    assert [(r.roomName, r.totalSessions) for r in rooms] == [(room_name, 1)]
    sessions = [s async for s in sdk.insights.room_sessions(room_name=room_name)]
    assert len(sessions) == 1 and sessions[0].endedAt is None
    people = [p async for p in sdk.insights.participants(room_session_id=sessions[0].roomSessionId, limit=1)]
    assert [(p.displayName, p.externalId) for p in people] == [("Ann", "ann-1"), ("Bob", "bob-1")]
    detail = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the stats sample is recorded after the joins, without an acknowledgement
        detail = await sdk.insights.participant(room_session_id=sessions[0].roomSessionId,
                                                participant_id=people[0].participantId)
        if detail and detail[0].samples.get("bitrateSend"):
            break
        await asyncio.sleep(0.1)
    assert detail and detail[0].userAgent == "UA Ann" and detail[0].samples["bitrateSend"][0]["value"] == 500_000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def test_verify_webhook_accepts_a_real_delivery_and_refuses_tampering(server, org, async_sdk, receiver):
    hook = await async_sdk.webhooks.create(url=receiver.url, events=["room.client.joined"], description="sdk test")
    assert hook.secret.startswith("whsec_") and [w.webhookId async for w in async_sdk.webhooks.list()] == [hook.webhookId]
    meeting = await async_sdk.meetings.create(end_date=END)
    async with Client(server.ws_url, meeting.roomName) as ann, Client(server.ws_url, meeting.roomName) as bob:
        await ann.join(displayName="Ann", externalId="ann-1", userAgent="UA Ann")
        await bob.join(displayName="Bob", externalId="bob-1")
        await ann.send({"type": "stats", "packetLossSend": 0.5, "packetLossRecv": 0.0, "bitrateSend": 500_000,
                        "bitrateRecv": 400_000, "sampleRateMs": 5000})
        await await_for(lambda: len(receiver.received) >= 2, timeout=30)
        await _check_insights(async_sdk, meeting.roomName)
    delivery = receiver.received[0]
    body, header = delivery.body, delivery.headers["Whereby-Signature"]

    event = verify_webhook(body, header, hook.secret)
    assert isinstance(event, WebhookEvent) and event.type == "room.client.joined"
    assert event.data["meetingId"] == meeting.meetingId and event.data["displayName"] == "Ann"
    assert verify_webhook(body.decode(), delivery.headers["Herewith-Signature"], hook.secret).id == event.id

    tampered = body.replace(b'"Ann"', b'"Eve"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify_webhook(tampered, header, hook.secret)
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify_webhook(body, header, "whsec_someone-elses-secret")
    signed_at = int(header.split(",")[0].removeprefix("t="))
    # The same genuine delivery replayed six minutes later: outside the default tolerance of 300 s.
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(body, header, hook.secret, now=signed_at + 360)
    assert verify_webhook(body, header, hook.secret, tolerance=None, now=signed_at + 360).id == event.id
    # A correctly signed header whose timestamp is old (as a captured delivery re-signed long ago would be).
    old = signed_at - 600
    old_header = f"t={old},v1={hmac_sha256_hex(hook.secret, str(old).encode() + b'.' + body)}"
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(body, old_header, hook.secret)
    for broken in (None, "", "v1=abc", "t=soon,v1=abc", f"t={signed_at}"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(body, broken, hook.secret)

    deliveries = await async_sdk.webhooks.deliveries(hook.webhookId)
    received_ids = [verify_webhook(r.body, r.headers["Whereby-Signature"], hook.secret).id for r in receiver.received]
    assert len(received_ids) == 2 and received_ids[0] == event.id
    assert [(d.eventId, d.succeeded, d.statusCode) for d in deliveries.results] == [
        (i, True, 200) for i in reversed(received_ids)]  # newest first
    rotated = await async_sdk.webhooks.rotate_secret(hook.webhookId)
    assert rotated.secret != hook.secret
    await async_sdk.webhooks.delete(hook.webhookId)
    assert [w async for w in async_sdk.webhooks.list()] == []
