"""The Python SDK (``herewith_client``) against a real server on SQLite and PostgreSQL: meetings created,
listed over several pages by following cursors, read and deleted, sync and async; errors arrive as the
exception of their status with the contract's body; recordings listed, linked and downloaded; theming."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from PIL import Image
from herewith_client import (
    AsyncHerewith,
    AsyncPage,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Herewith,
    Meeting,
    NotFoundError,
    Recording,
    SyncPage,
)

from tests.recordings.helpers import seed_recording

END = datetime(2099, 2, 18, 14, 23, tzinfo=timezone.utc)


def test_meetings_create_list_pages_get_delete(sdk: Herewith, server, org):
    created = [sdk.meetings.create(end_date=END, room_name_prefix="sdk", fields=["hostRoomUrl"]) for _ in range(7)]
    other = sdk.meetings.create(end_date="2099-02-18T09:23:00-05:00", room_mode="group")  # another prefix: filtered out
    assert all(isinstance(m, Meeting) and m.roomName.startswith("/sdk-") for m in created)
    assert created[0].endDate == END and created[0].hostRoomUrl and "roomKey=" in created[0].hostRoomUrl
    assert other.endDate == END and other.hostRoomUrl is None

    first = sdk.meetings.list(limit=3, room_name_starts_with="/sdk-")
    assert isinstance(first, SyncPage) and len(first.results) == 3 and first.has_next_page()
    pages = list(first.iter_pages())
    assert [len(p.results) for p in pages] == [3, 3, 1] and pages[-1].cursor is None
    listed = list(sdk.meetings.list(limit=3, room_name_starts_with="/sdk-"))  # the iterator follows the cursors
    assert [m.meetingId for m in listed] == [m.meetingId for m in created]  # oldest first
    assert len(list(sdk.meetings.list(limit=2))) == 8

    got = sdk.meetings.get(created[3].meetingId, fields=["hostRoomUrl", "viewerRoomUrl"])
    assert (got.meetingId, got.roomUrl) == (created[3].meetingId, created[3].roomUrl)
    assert got.viewerRoomUrl and got.viewerRoomUrl != got.hostRoomUrl

    for meeting in [*created, other]:
        sdk.meetings.delete(meeting.meetingId)
    with pytest.raises(NotFoundError) as gone:
        sdk.meetings.get(created[3].meetingId)
    assert gone.value.status_code == 404 and gone.value.body == {"error": "The requested resource doesn't exist"}
    page = sdk.meetings.list()
    assert page.results == [] and page.cursor is None and list(page) == []


def test_errors_are_one_class_per_status_with_the_contract_body(sdk: Herewith, server):
    with pytest.raises(BadRequestError) as bad:
        sdk.meetings.create(end_date=datetime.now(timezone.utc) - timedelta(days=1))
    assert bad.value.status_code == 400 and "endDate" in bad.value.data and bad.value.message.startswith("Invalid endDate")
    with pytest.raises(BadRequestError) as bad_limit:
        sdk.meetings.list(limit=1000)
    assert "limit" in bad_limit.value.data
    with pytest.raises(ValueError):
        sdk.meetings.create(end_date=datetime(2099, 1, 1))  # naive: which zone is unknown
    with Herewith(base_url=server.base_url, api_key="hw_not-a-key") as stranger:
        with pytest.raises(AuthenticationError) as denied:
            stranger.meetings.list()
    assert denied.value.body == {"error": "Access token is missing or invalid"}


async def test_async_client_create_list_pages_get_delete(async_sdk: AsyncHerewith):
    created = [await async_sdk.meetings.create(end_date=END, room_name_prefix="async") for _ in range(5)]
    first = await async_sdk.meetings.list(limit=2)
    assert isinstance(first, AsyncPage) and len(first.results) == 2 and first.cursor
    second = await first.next_page()
    assert [m.meetingId for m in second.results] == [m.meetingId for m in created[2:4]]
    listed = [m async for m in async_sdk.meetings.list(limit=2)]
    assert [m.meetingId for m in listed] == [m.meetingId for m in created]
    got = await async_sdk.meetings.get(created[4].meetingId)
    assert got.roomName == created[4].roomName
    for meeting in created:
        await async_sdk.meetings.delete(meeting.meetingId)
    with pytest.raises(NotFoundError):
        await async_sdk.meetings.get(created[0].meetingId)
    assert [m async for m in async_sdk.meetings.list()] == []


async def test_recordings_list_link_and_download(server, org, sdk: Herewith, async_sdk: AsyncHerewith, tmp_path):
    content = bytes(range(256)) * 4096  # 1 MiB: several chunks
    started = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
    ids = [await seed_recording(server, org.organization_id, "/sdk-rec", started=started + timedelta(minutes=i),
                                content=content if i == 0 else b"x" * 1000) for i in range(3)]
    busy = await seed_recording(server, org.organization_id, "/sdk-rec", started=started + timedelta(hours=1),
                                state="recording")

    listed = [r.recordingId async for r in async_sdk.recordings.list(room_name="/sdk-rec", sort_by="startDate:asc",
                                                                       limit=2)]
    assert listed == [*ids, busy]
    one = await async_sdk.recordings.get(ids[0])
    assert isinstance(one, Recording) and one.sizeInMegaBytes == pytest.approx(len(content) / 1e6, abs=1e-3)
    link = await async_sdk.recordings.access_link(ids[0], valid_for_seconds=60)
    assert link.expires_at > datetime.now(timezone.utc)
    with pytest.raises(ConflictError):
        await async_sdk.recordings.access_link(busy)

    progress: list[tuple[int, int | None]] = []
    target = tmp_path / "first.mp4"
    size = await async_sdk.recordings.download(ids[0], target, on_progress=lambda done, total: progress.append((done, total)))
    assert size == len(content) and target.read_bytes() == content
    assert len(progress) > 1 and progress[-1] == (len(content), len(content))
    buffer = io.BytesIO()
    assert sdk.recordings.download(ids[1], buffer) == 1000 and buffer.getvalue() == b"x" * 1000

    await async_sdk.recordings.bulk_delete(ids[1:])
    await async_sdk.recordings.delete(ids[0])
    assert [r.recordingId for r in sdk.recordings.list()] == [busy]


def test_theming(sdk: Herewith, server):
    meeting = sdk.meetings.create(end_date=END)
    assert sdk.theming.set_tokens(meeting.roomName, primary="#112233", focus="#abcdef") is None
    sdk.theming.set_background(meeting.roomName, palette="purple", theme="mountains")
    logo = io.BytesIO()
    Image.new("RGB", (400, 120), (30, 60, 200)).save(logo, "PNG")
    sdk.theming.set_logo(meeting.roomName, logo.getvalue())
    served = httpx.get(f"{server.base_url}/themes/rooms{meeting.roomName}/logo", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    sdk.theming.reset_logo(meeting.roomName)
    with pytest.raises(BadRequestError) as bad:
        sdk.theming.set_tokens(meeting.roomName, primary="red")
    assert any("primary" in field for field in bad.value.data)
    with pytest.raises(BadRequestError) as not_image:
        sdk.theming.set_logo(meeting.roomName, b"GIF89a not an image we take")
    assert "image" in not_image.value.data
    with pytest.raises(NotFoundError):
        sdk.theming.set_tokens("/no-such-room", primary="#112233")
