"""The six ``/v1/transcriptions`` calls over HTTP on SQLite and PostgreSQL (CONTRACT.md "Recordings,
transcriptions, summaries"): a real transcription of two participants' own audio tracks with faster-whisper
(tiny.en here) in worker processes, the signed ``transcription.*`` webhooks, the Markdown transcript behind
a signed expiring link; list, get, delete, bulk delete; the contract's error bodies; a clear 503 when no
speech model can run."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from herewith.transcriptions.transcript import Utterance
from herewith.webhooks.signing import verify_signature
from tests.support.contract import component_schema, response_schema, validate
from tests.support.speech import word_error_rate
from tests.transcriptions.helpers import ALICE, BOB, T0, lines_of, seed_recording_with_tracks, wait_state
from tests.webhooks.helpers import Receiver, await_for

pytest.importorskip("faster_whisper", reason="the speech extra is not installed (pip install -e '.[speech]')")


async def _store_live(server, organization_id: str, room_name: str, started, utterances, language="en") -> str:
    """A LIVE_TRANSCRIPTION stored through the service call live captions use."""
    from herewith.meetings.models import Meeting
    from herewith.transcriptions import service

    meeting = Meeting(id=str(uuid.uuid4()), organization_id=organization_id, room_name=room_name)

    async def go() -> str:
        async with server.services.sessionmaker() as s:
            t = await service.store_live_transcript(s, meeting, str(uuid.uuid4()), started,
                                                    started + timedelta(minutes=1), utterances, language,
                                                    started + timedelta(minutes=2), server.settings)
            await s.commit()
            return t.id

    return server.run_coro(go())


@pytest.mark.timeout(240)
async def test_transcribes_each_participants_track_names_the_speakers_and_signs_the_webhooks(
        server, client, org, speech_tracks):
    receiver = Receiver().start()
    try:
        hook = (await client.post("/webhooks", json={"url": receiver.url, "events": [
            "transcription.started", "transcription.finished", "transcription.failed"]})).json()
        seeded = await seed_recording_with_tracks(server.settings, org.organization_id,
                                                  [("Alice", speech_tracks["Alice"]), ("Bob", speech_tracks["Bob"])])
        r = await client.post("/transcriptions", json={"recordingId": seeded.recording_id})
        assert r.status_code == 201, r.text
        assert set(r.json()) == {"transcriptionId"}
        tid = r.json()["transcriptionId"]
        first = (await client.get(f"/transcriptions/{tid}")).json()
        assert first["state"] in ("in_progress", "ready") and first["type"] == "RECORDING_TRANSCRIPTION"
        done = await wait_state(client, f"/transcriptions/{tid}", timeout=180)
        assert done["state"] == "ready", done
        assert done["recordingId"] == seeded.recording_id and done["roomName"] == "/weekly-sync"
        assert done["language"] == "en" and done["durationInSeconds"] == 22.0
        assert done["filename"] == "weekly-sync_2030-01-01T12-00-00Z.md" and done["storageType"] == "WHEREBY_HOSTED"
        validate(done, component_schema("Transcription"))

        await await_for(lambda: len(receiver.events()) >= 2, timeout=20)
        assert receiver.types() == ["transcription.started", "transcription.finished"]
        for received in receiver.received:
            assert verify_signature(hook["secret"], received.headers["Whereby-Signature"], received.body)
        finished = receiver.events("transcription.finished")[0]["data"]
        assert finished["transcriptionId"] == tid and finished["state"] == "ready"
        assert finished["roomSessionId"] and finished["meetingId"] == seeded.meeting_id

        link = (await client.get(f"/transcriptions/{tid}/access-link", params={"validForSeconds": 60})).json()
        validate(link, response_schema("/transcriptions/{transcriptionId}/access-link", "get"))
        async with httpx.AsyncClient(timeout=30) as plain:
            got = await plain.get(link["accessLink"])
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/markdown")
        markdown = got.text
        lines = lines_of(markdown)
        # Alice, Bob, Alice: each on their own lines, in time order, with their own words
        assert [speaker for _, speaker, _ in lines] == ["Alice", "Bob", "Alice"], markdown
        assert [stamp for stamp, _, _ in lines] == sorted(stamp for stamp, _, _ in lines)
        assert lines[1][0] in ("00:00:07", "00:00:08") and lines[2][0] in ("00:00:16", "00:00:17"), markdown
        alice = " ".join(words for _, speaker, words in lines if speaker == "Alice")
        bob = " ".join(words for _, speaker, words in lines if speaker == "Bob")
        assert word_error_rate(" ".join(t for _, t in ALICE), alice) <= 0.15, alice
        assert word_error_rate(" ".join(t for _, t in BOB), bob) <= 0.15, bob
        assert "language: en" in markdown and "speakers: Alice, Bob" in markdown
    finally:
        receiver.stop()


async def test_a_recording_without_audio_tracks_fails_with_a_webhook(server, client, org):
    receiver = Receiver().start()
    try:
        await client.post("/webhooks", json={"url": receiver.url, "events": ["transcription.failed"]})
        seeded = await seed_recording_with_tracks(server.settings, org.organization_id, [])
        tid = (await client.post("/transcriptions", json={"recordingId": seeded.recording_id})).json()["transcriptionId"]
        failed = await wait_state(client, f"/transcriptions/{tid}", timeout=60)
        assert failed["state"] == "failed" and failed["filename"] is None
        await await_for(lambda: receiver.events("transcription.failed"), timeout=20)
        data = receiver.events("transcription.failed")[0]["data"]
        assert data["transcriptionId"] == tid and "no per-participant audio tracks" in data["error"]
        r = await client.get(f"/transcriptions/{tid}/access-link")
        assert r.status_code == 409 and r.json()["data"] == {"state": "failed"}
    finally:
        receiver.stop()


async def test_bad_requests_are_the_contracts_errors(server, client, org, other_org):
    pending = await seed_recording_with_tracks(server.settings, org.organization_id, [], state="recording")
    r = await client.post("/transcriptions", json={"recordingId": pending.recording_id})
    assert r.status_code == 409 and r.json() == {"error": "The recording is not ready yet", "data": {"state": "recording"}}
    assert (await client.post("/transcriptions", json={"recordingId": str(uuid.uuid4())})).status_code == 404
    r = await client.post("/transcriptions", json={})
    assert r.status_code == 400 and "recordingId" in r.json()["data"]
    assert (await client.post("/transcriptions", json={"recordingId": 12})).status_code == 400
    assert (await client.post("/transcriptions/bulk-delete", json={"transcriptionIds": "x"})).status_code == 400
    r = await client.get("/transcriptions", params={"sortBy": "size"})
    assert r.status_code == 400 and "sortBy" in r.json()["data"]
    # another organization's recording and transcription are 404s
    mine = await seed_recording_with_tracks(server.settings, org.organization_id, [])
    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers, timeout=30) as other:
        assert (await other.post("/transcriptions", json={"recordingId": mine.recording_id})).status_code == 404
        tid = await _store_live(server, org.organization_id, "/mine", T0, [Utterance(1, "A", "Hello there.")])
        assert (await other.get(f"/transcriptions/{tid}")).status_code == 404
        assert (await other.get(f"/transcriptions/{tid}/access-link")).status_code == 404
        assert (await other.delete(f"/transcriptions/{tid}")).status_code == 204
        assert (await other.get("/transcriptions")).json() == {"results": [], "cursor": None}
    assert (await client.get(f"/transcriptions/{tid}")).status_code == 200
    # links: a wrong or expired token is 403, bad validForSeconds 400
    link = (await client.get(f"/transcriptions/{tid}/access-link", params={"validForSeconds": 1})).json()["accessLink"]
    assert (await client.get(f"/transcriptions/{tid}/access-link", params={"validForSeconds": 0})).status_code == 400
    async with httpx.AsyncClient(timeout=30) as plain:
        assert (await plain.get(link.replace("token=", "token=x"))).status_code == 403
        server.services.clock.offset += timedelta(seconds=5)  # the server's clock moves past the expiry
        try:
            assert (await plain.get(link)).status_code == 403
        finally:
            server.services.clock.offset -= timedelta(seconds=5)


async def test_live_transcripts_list_page_sort_and_delete(server, client, org):
    a = await _store_live(server, org.organization_id, "/b-room", T0, [Utterance(2, "Ann", "First words.")])
    b = await _store_live(server, org.organization_id, "/a-room", T0 + timedelta(hours=1),
                          [Utterance(65, "Bob: the builder", "Later words."), Utterance(1, "Cy", "Early words.")])
    c = await _store_live(server, org.organization_id, "/c-room", T0 + timedelta(hours=2), [])
    ids = lambda body: [t["transcriptionId"] for t in body["results"]]  # noqa: E731
    assert ids((await client.get("/transcriptions")).json()) == [c, b, a]
    assert ids((await client.get("/transcriptions", params={"sortBy": "roomName"})).json()) == [b, a, c]
    pages, cursor = [], None
    while True:
        body = (await client.get("/transcriptions", params={"limit": 1, **({"cursor": cursor} if cursor else {})})).json()
        pages += ids(body)
        cursor = body["cursor"]
        if cursor is None:
            break
    assert pages == [c, b, a]
    assert ids((await client.get("/transcriptions", params={"roomName": "a-room"})).json()) == [b]
    validate((await client.get("/transcriptions")).json(), response_schema("/transcriptions", "get"))
    got = (await client.get(f"/transcriptions/{b}")).json()
    assert got["type"] == "LIVE_TRANSCRIPTION" and got["state"] == "ready" and got["durationInSeconds"] == 60.0
    link = (await client.get(f"/transcriptions/{b}/access-link")).json()["accessLink"]
    async with httpx.AsyncClient(timeout=30) as plain:
        text = (await plain.get(link)).text
    assert lines_of(text) == [("00:00:01", "Cy", "Early words."), ("00:01:05", "Bob the builder", "Later words.")]

    assert (await client.delete(f"/transcriptions/{a}")).status_code == 204
    assert (await client.delete(f"/transcriptions/{a}")).status_code == 204  # idempotent
    assert (await client.get(f"/transcriptions/{a}")).status_code == 404
    async with httpx.AsyncClient(timeout=30) as plain:
        assert (await plain.get(link)).status_code == 200
    r = await client.post("/transcriptions/bulk-delete", json={"transcriptionIds": [b, c, str(uuid.uuid4())]})
    assert r.status_code == 204
    assert (await client.get("/transcriptions")).json() == {"results": [], "cursor": None}
    async with httpx.AsyncClient(timeout=30) as plain:
        assert (await plain.get(link)).status_code == 404  # the transcript went with it
