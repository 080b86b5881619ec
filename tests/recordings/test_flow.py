"""Cloud recording end to end on a real server (SQLite and PostgreSQL): a host starts and stops a recording
over signaling, a recorder (the streaming launcher: a real WebM from ffmpeg standing in for the browser's
MediaRecorder) joins as ``recorder`` and streams into the ingest socket, the server finalizes with ffmpeg,
a signed ``recording.finished`` arrives, and the access link downloads a file ffprobe reads with the
recorded duration (CONTRACT.md "Recordings", "Webhooks"; the recording interface, sections 2, 3 and 5)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from herewith.webhooks.signing import verify_signature
from tests.recordings.conftest import WEBM_SECONDS
from tests.recordings.helpers import probe, wait_recording
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.webhooks.helpers import Receiver, await_for

CLOUD = {"type": "cloud", "destination": None, "startTrigger": "none"}


@pytest.mark.timeout(120)
async def test_host_records_stops_and_downloads_the_file(server, client, launcher, webm, tmp_path):
    receiver = Receiver().start()
    try:
        hook = (await client.post("/webhooks", json={"url": receiver.url, "events": ["recording.finished"]})).json()
        meeting = await create_meeting(client, recording=CLOUD)
        async with Client(server.ws_url, meeting["roomName"]) as host, \
                Client(server.ws_url, meeting["roomName"]) as guest:
            joined = await host.join(displayName="Ann", roomKey=room_key(meeting["hostRoomUrl"]))
            assert joined["recordingOptions"] == {"type": "cloud", "startTrigger": "none"}
            assert "recording" not in joined
            await guest.join(displayName="Bob")
            await guest.send({"type": "recording_start"})
            assert (await guest.expect_error("forbidden"))["ref"] == "recording_start"

            await host.send({"type": "recording_start"})
            starting = await host.expect("recording", state="starting")
            recording_id = starting["recordingId"]
            await guest.expect("recording", state="starting", recordingId=recording_id)
            # "recording" once the first composite chunk is on disk
            await host.expect("recording", timeout=10, state="recording", recordingId=recording_id)
            recorder = await _joined_role(host, "recorder")
            assert recorder["sends"] is False
            async with Client(server.ws_url, meeting["roomName"]) as late:
                late_joined = await late.join(displayName="Cy")
                assert late_joined["recording"] == {"state": "recording", "recordingId": recording_id}
            listed = (await client.get("/recordings")).json()["results"]
            assert [(r["recordingId"], r["state"]) for r in listed] == [(recording_id, "recording")]

            await await_for(lambda: launcher.sent.get(recording_id) == len(webm), timeout=30)
            await host.send({"type": "recording_stop"})
            await host.expect("recording", timeout=30, state="stopped", recordingId=recording_id)

        ready = await wait_recording(client, recording_id)
        assert ready["roomName"] == meeting["roomName"] and ready["meetingId"] == meeting["meetingId"]
        assert ready["roomSessionId"]  # Ann and Bob were a room session
        assert ready["filename"].endswith(".mp4") and ready["fileFormat"] == "mp4" and ready["storageType"] == "whereby"
        assert ready["sizeInMegaBytes"] > 0.1 and abs(ready["duration"] - WEBM_SECONDS) <= 2
        assert ready["startDate"].endswith("Z") and ready["endDate"] > ready["startDate"]

        await await_for(lambda: receiver.events("recording.finished"), timeout=20)
        delivery = next(r for r in receiver.received if r.json["type"] == "recording.finished")
        assert verify_signature(hook["secret"], delivery.headers["Whereby-Signature"], delivery.body)
        data = delivery.json["data"]
        assert data["recordingId"] == recording_id and data["meetingId"] == meeting["meetingId"]
        assert data["roomName"] == meeting["roomName"] and data["filename"] == ready["filename"]

        link = (await client.get(f"/recordings/{recording_id}/access-link", params={"validForSeconds": 60})).json()
        now_ms = server.clock.now().timestamp() * 1000
        assert 55_000 <= link["expires"] - now_ms <= 61_000
        async with httpx.AsyncClient(timeout=30) as http:
            part = await http.get(link["accessLink"], headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and len(part.content) == 100
            assert part.headers["content-range"].startswith("bytes 0-99/")
            whole = await http.get(link["accessLink"])
            assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
            assert whole.content[:100] == part.content
            assert round(len(whole.content) / 1_000_000, 3) == ready["sizeInMegaBytes"]
        path = tmp_path / "download.mp4"
        path.write_bytes(whole.content)
        info = probe(path)
        assert abs(float(info["format"]["duration"]) - WEBM_SECONDS) <= 2
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 360)
        assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in info["streams"])
    finally:
        receiver.stop()


async def test_automatic_2nd_participant_starts_on_the_second_join(server, client, launcher):
    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "automatic-2nd-participant"})
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        joined = await ann.join(displayName="Ann", roomKey=room_key(meeting["hostRoomUrl"]))
        assert joined["recordingOptions"]["startTrigger"] == "automatic-2nd-participant"
        await ann.nothing(0.5)
        assert launcher.started == []
        async with Client(server.ws_url, meeting["roomName"]) as bob:
            await bob.join(displayName="Bob")
            started = await ann.expect("recording", timeout=10, state="starting")
            await bob.expect("recording", timeout=10, state="recording", recordingId=started["recordingId"])
            assert [rid for rid, _ in launcher.started] == [started["recordingId"]]
            assert (await client.get("/recordings")).json()["results"][0]["trigger"] == "automatic-2nd-participant"


async def test_deleting_the_meeting_stops_the_recording_and_keeps_the_file(server, client, launcher):
    launcher.interval = 0.1  # about 2.5 s of media a second: still streaming when the meeting goes
    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "automatic",
                                                      "destination": {"provider": "whereby", "fileFormat": "mkv"}})
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        await ann.join(displayName="Ann")
        started = await ann.expect("recording", timeout=10, state="recording")
        recording_id = started["recordingId"]
        await asyncio.sleep(1.0)
        assert (await client.delete(f"/meetings/{meeting['meetingId']}")).status_code == 204
        await ann.expect("ended", timeout=10)
    ready = await wait_recording(client, recording_id)
    assert launcher.stopped == [recording_id] and launcher.sent[recording_id] < len(launcher.webm)
    assert ready["filename"].endswith(".mkv") and 1 <= ready["duration"] < 15
    link = (await client.get(f"/recordings/{recording_id}/access-link")).json()
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(link["accessLink"])).status_code == 200


async def test_no_free_recorder_or_no_cloud_option_is_unavailable_and_prompt_is_the_hosts_yes(server, client, launcher):
    launcher.available = False
    meeting = await create_meeting(client, recording=CLOUD)
    plain = await create_meeting(client)
    async with Client(server.ws_url, meeting["roomName"]) as host, Client(server.ws_url, meeting["roomName"]) as bob:
        await host.join(roomKey=room_key(meeting["hostRoomUrl"]))
        await bob.join()
        await host.send({"type": "recording_start"})
        refused = await host.expect("recording", timeout=10, state="unavailable")
        assert refused.get("recordingId") is None and "recorder" in refused["message"]
        await bob.nothing(0.3)  # only the asking host is told
    prompted = await create_meeting(client, recording={**CLOUD, "startTrigger": "prompt"})
    launcher.available = True
    async with Client(server.ws_url, prompted["roomName"]) as host:
        joined = await host.join(roomKey=room_key(prompted["hostRoomUrl"]))
        assert joined["recordingOptions"] == {"type": "cloud", "startTrigger": "prompt"}  # the page asks the host
        await host.send({"type": "recording_start"})  # the host said yes
        recording_id = (await host.expect("recording", timeout=10, state="starting"))["recordingId"]
        assert (await client.get(f"/recordings/{recording_id}")).json()["trigger"] == "prompt"
        await host.send({"type": "recording_stop"})
        await host.expect("recording", timeout=30, state="stopped")
    async with Client(server.ws_url, plain["roomName"]) as host:
        joined = await host.join(roomKey=room_key(plain["hostRoomUrl"]))
        assert joined["recordingOptions"] == {"type": "none", "startTrigger": "none"}
        await host.send({"type": "recording_start"})
        assert "not enabled" in (await host.expect("recording", state="unavailable"))["message"]
    assert [r["trigger"] for r in (await client.get("/recordings")).json()["results"]] == ["prompt"]


async def _joined_role(client: Client, role: str, timeout: float = 10.0) -> dict:
    """The next ``participant_joined`` of someone with ``role``; the participant."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await client.expect("participant_joined", timeout=max(0.1, deadline - loop.time()))
        if msg["participant"]["role"] == role:
            return msg["participant"]


async def test_a_room_left_to_its_recorder_stops_recording(server, client, launcher):
    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "automatic"})
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        await ann.join(displayName="Ann")
        recording_id = (await ann.expect("recording", timeout=10, state="recording"))["recordingId"]
        await _joined_role(ann, "recorder")
    # Ann left; only the recorder is in the room: stopped after recording_stop_grace_seconds (1 s here)
    ready = await wait_recording(client, recording_id, timeout=30)
    assert launcher.stopped == [recording_id] and ready["trigger"] == "automatic"


async def test_ingest_refuses_bad_tokens_streams_and_stopped_recordings(server, client, launcher):
    import websockets

    from tests.recordings.launchers import ingest_url

    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "automatic"})
    launcher.join_room = False
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        await ann.join(displayName="Ann")
        recording_id = (await ann.expect("recording", timeout=10, state="recording"))["recordingId"]
        page_url = launcher.started[0][1]
        good = ingest_url(page_url)

        async def refused(url: str) -> int:
            async with websockets.connect(url) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code

        assert await refused(good.replace("token=", "token=x")) == 4403
        other = await create_meeting(client, recording={**CLOUD, "startTrigger": "none"})
        assert await refused(good.replace(recording_id, other["meetingId"])) == 4403  # a token is for one recording
        assert await refused(ingest_url(page_url, stream="../../etc")) == 4400
        assert await refused(ingest_url(page_url, mime="video/mp4")) == 4400
        await ann.send({"type": "leave"})
    await wait_recording(client, recording_id, timeout=30)
    assert await refused(good) == 4409  # stopped: nothing more is accepted


async def test_reconnects_continue_the_file_and_a_restarted_recorder_starts_a_part(server, client, launcher, webm):
    import websockets
    from sqlalchemy import select

    from herewith.recordings.models import RecordingTrack
    from tests.recordings.launchers import chunks, ingest_url

    launcher.webm, launcher.join_room = b"", False  # the test streams by itself
    meeting = await create_meeting(client, recording=CLOUD)
    async with Client(server.ws_url, meeting["roomName"]) as host:
        await host.join(roomKey=room_key(meeting["hostRoomUrl"]))
        await host.send({"type": "recording_start"})
        recording_id = (await host.expect("recording", timeout=10, state="starting"))["recordingId"]
        page_url = (await await_for(lambda: launcher.started, timeout=10))[0][1]  # launched after "starting"
        half = len(webm) // 2

        async def send(url: str, data: bytes, first_text: str | None = None) -> None:
            async with websockets.connect(url, max_size=2**20) as ws:  # replaces the launcher's idle socket
                if first_text:
                    await ws.send(first_text)
                for chunk in chunks(data):
                    await ws.send(chunk)

        await send(ingest_url(page_url), webm[:half])
        await host.expect("recording", timeout=10, state="recording")
        await send(ingest_url(page_url), webm[half:])  # the same MediaRecorder, a new socket: appended
        await send(ingest_url(page_url), webm)  # a restarted recorder: a new WebM document, the next part
        await send(ingest_url(page_url, "ann-1", "audio/webm;codecs=opus"), webm, '{"type":"meta","displayName":"Ann"}')
        directory = server.settings.data_dir / "recordings" / recording_id
        await await_for(lambda: (directory / "composite.1.webm").exists()
                        and (directory / "composite.1.webm").stat().st_size == len(webm), timeout=10)
        assert (directory / "composite.webm").read_bytes() == webm
        await host.send({"type": "recording_stop"})
        await host.expect("recording", timeout=30, state="stopped")
    ready = await wait_recording(client, recording_id)
    assert abs(ready["duration"] - 2 * WEBM_SECONDS) <= 2  # both parts, in order

    async def tracks():  # noqa: ANN202
        async with server.services.sessionmaker() as s:
            return (await s.scalars(select(RecordingTrack).where(RecordingTrack.recording_id == recording_id)
                                    .order_by(RecordingTrack.stream))).all()

    ann = next(t for t in server.run_coro(tracks()) if t.stream == "ann-1")
    assert (ann.kind, ann.display_name, ann.bytes_received) == ("audio", "Ann", len(webm))
    assert ann.storage_key == f"{recording_id}/tracks/ann-1.webm" and abs(ann.duration_ms / 1000 - WEBM_SECONDS) <= 2
    assert (directory / "tracks" / "ann-1.webm").is_file() and not (directory / "composite.webm").exists()


async def test_a_recorder_that_fails_or_sends_nothing_is_failed_for_everyone(server, client, launcher):
    meeting = await create_meeting(client, recording=CLOUD)
    async with Client(server.ws_url, meeting["roomName"]) as host, Client(server.ws_url, meeting["roomName"]) as bob:
        await host.join(roomKey=room_key(meeting["hostRoomUrl"]))
        await bob.join()
        launcher.fail_start = True
        await host.send({"type": "recording_start"})
        first = (await bob.expect("recording", timeout=10, state="starting"))["recordingId"]
        assert (await bob.expect("recording", timeout=10, state="failed", recordingId=first))["message"]
        launcher.fail_start, launcher.webm = False, b""  # comes up, never sends a byte
        control = server.services.recordings
        control.settings = control.settings.model_copy(update={"recording_start_timeout_seconds": 0.5})
        await host.send({"type": "recording_start"})
        second = (await bob.expect("recording", timeout=10, state="starting"))["recordingId"]
        await bob.expect("recording", timeout=10, state="failed", recordingId=second)
        assert launcher.stopped == [second]
    assert (await client.get("/recordings")).json()["results"] == []  # neither had media: nothing to list


async def test_h264_from_the_recorder_is_kept_and_only_the_audio_is_encoded(server, client, launcher, h264_webm,
                                                                            tmp_path):
    launcher.webm = h264_webm
    meeting = await create_meeting(client, recording={**CLOUD, "startTrigger": "automatic"})
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        await ann.join(displayName="Ann")
        recording_id = (await ann.expect("recording", timeout=10, state="recording"))["recordingId"]
        await await_for(lambda: launcher.sent.get(recording_id) == len(h264_webm), timeout=30)
    ready = await wait_recording(client, recording_id, timeout=30)  # Ann left: stopped after the grace
    link = (await client.get(f"/recordings/{recording_id}/access-link")).json()
    async with httpx.AsyncClient(timeout=30) as http:
        data = (await http.get(link["accessLink"])).content
    path = tmp_path / "h264.mp4"
    path.write_bytes(data)
    info = probe(path)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert abs(float(info["format"]["duration"]) - WEBM_SECONDS) <= 2 and abs(ready["duration"] - WEBM_SECONDS) <= 2
    # kept, not encoded again: the recorder's Constrained Baseline stream, not the server's libx264 High profile
    assert next(s for s in info["streams"] if s["codec_type"] == "video")["profile"] == "Constrained Baseline"


async def test_deactivation_an_hour_after_end_date_stops_the_recording(server, client, launcher):
    from datetime import timedelta

    from herewith.kit.time import format_utc

    launcher.interval = 0.1  # still streaming when the room is deactivated
    end = format_utc(server.clock.now() + timedelta(minutes=5))
    meeting = await create_meeting(client, endDate=end, recording={**CLOUD, "startTrigger": "automatic"})
    async with Client(server.ws_url, meeting["roomName"]) as ann:
        await ann.join(displayName="Ann")
        recording_id = (await ann.expect("recording", timeout=10, state="recording"))["recordingId"]
        server.clock.advance(2 * 3600)
        server.run_coro(server.services.sweeper.run_once())  # deactivates the room: MeetingEvents "expired"
        assert (await ann.expect("ended", timeout=10))["reason"] == "expired"
    ready = await wait_recording(client, recording_id, timeout=30)
    assert launcher.stopped == [recording_id] and ready["duration"] > 0
