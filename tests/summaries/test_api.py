"""The four ``/v1/summaries`` calls over HTTP on SQLite and PostgreSQL (CONTRACT.md "Recordings,
transcriptions, summaries"): each of the six templates yields its sections from the built-in extractive
backend, every sentence of which occurs word for word in the transcript, marked a draft; list, get,
idempotent delete; the contract's errors."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from herewith.kit.time import UTC
from herewith.summaries.templates import TEMPLATES
from herewith.transcriptions.transcript import parse_markdown
from tests.summaries.conftest import FIXTURES
from tests.support.contract import component_schema, validate
from tests.transcriptions.helpers import wait_state

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
SOURCES = {"SOAP": "consult", "Extended SOAP": "consult", "General Narrative": "meeting",
           "General Bulleted": "meeting", "Educational Lecture": "lecture", "Educational Tutoring": "lecture"}


def store_transcript(server, organization_id: str, name: str, state: str = "ready") -> str:
    """A transcription holding ``tests/fixtures/transcripts/<name>.md``, through the live-transcript service
    call (the same row a recording transcription ends as)."""
    from herewith.meetings.models import Meeting
    from herewith.transcriptions import service

    utterances = parse_markdown((FIXTURES / f"{name}.md").read_text())
    meeting = Meeting(id=str(uuid.uuid4()), organization_id=organization_id, room_name=f"/{name}-room")

    async def go() -> str:
        async with server.services.sessionmaker() as s:
            t = await service.store_live_transcript(s, meeting, str(uuid.uuid4()), T0, T0 + timedelta(minutes=6),
                                                    utterances, "en", T0, server.settings)
            t.state = state
            await s.commit()
            return t.id

    return server.run_coro(go())


def _normalized(text: str) -> str:
    return " ".join(text.split())


async def test_each_template_yields_its_sections_of_verbatim_sentences(server, client, org):
    transcripts = {name: store_transcript(server, org.organization_id, name) for name in set(SOURCES.values())}
    created = {}
    for template, source in SOURCES.items():
        r = await client.post("/summaries", json={"transcriptionId": transcripts[source], "template": template})
        assert r.status_code == 201, r.text
        assert set(r.json()) == {"summaryId"}
        created[template] = r.json()["summaryId"]
    for template, summary_id in created.items():
        got = await wait_state(client, f"/summaries/{summary_id}", ("completed", "failed"), timeout=60)
        assert got["state"] == "completed", got
        validate(got, component_schema("Summary"))
        assert got["template"] == template and got["transcriptionId"] == transcripts[SOURCES[template]]
        assert got["startDate"] == "2030-01-01T09:00:00.000Z" and got["endDate"] == "2030-01-01T09:06:00.000Z"
        body = got["summary"]
        assert body["draft"] is True and body["backend"] == "extractive" and "Draft for review" in body["summary"]
        assert [s["title"] for s in body["sections"]] == list(TEMPLATES[template])
        for title in TEMPLATES[template]:
            assert f"## {title}" in body["summary"], (template, title)
        transcript = (FIXTURES / f"{SOURCES[template]}.md").read_text()
        utterance_text = " ".join(u.text for u in parse_markdown(transcript))
        items = [item for section in body["sections"] for item in section["items"] if "speaker" in item]
        assert items, template
        for item in items:  # every sentence occurs in the transcript, as it was said, by who said it
            assert _normalized(item["text"]) in _normalized(utterance_text), (template, item)
            said = [u for u in parse_markdown(transcript) if item["text"] in u.text]
            assert said and said[0].speaker == item["speaker"] and said[0].start == item["at"], (template, item)
        filled = {s["title"] for s in body["sections"] if s["items"]}
        assert filled == set(TEMPLATES[template]), (template, set(TEMPLATES[template]) - filled)

    soap = (await client.get(f"/summaries/{created['SOAP']}")).json()["summary"]["sections"]
    by_title = {s["title"]: [i["text"] for i in s["items"]] for s in soap}
    assert "I think this is most likely a community acquired pneumonia." in by_title["Assessment"]
    assert any("crackles" in t for t in by_title["Objective"])
    assert any("doxycycline" in t for t in by_title["Plan"])
    assert all("metformin" not in t for t in by_title["Plan"]) and any("metformin" in t for t in by_title["Subjective"])
    bulleted = (await client.get(f"/summaries/{created['General Bulleted']}")).json()["summary"]["sections"]
    actions = {i["text"]: (i["owner"], i["due"]) for s in bulleted if s["title"] == "Action Items" for i in s["items"]}
    assert actions["Dan will profile the PDF export by Friday."] == ("Dan", "Friday")
    assert actions["I think we can fix it by Wednesday."] == ("Ben", "Wednesday")
    decisions = [i["text"] for s in bulleted if s["title"] == "Decisions" for i in s["items"]]
    assert "OK, let's agree on the twenty second for the beta." in decisions
    assert not any("will not renew" in text for text in actions)


async def test_list_get_delete_and_errors(server, client, org, other_org):
    ready = store_transcript(server, org.organization_id, "meeting")
    pending = store_transcript(server, org.organization_id, "meeting", state="in_progress")
    a = (await client.post("/summaries", json={"transcriptionId": ready})).json()["summaryId"]  # default template
    b = (await client.post("/summaries", json={"transcriptionId": ready, "template": "SOAP"})).json()["summaryId"]
    assert (await wait_state(client, f"/summaries/{a}", ("completed",), timeout=60))["template"] == "General Bulleted"
    listed = (await client.get("/summaries")).json()
    assert [s["summaryId"] for s in listed["results"]] == [b, a] and listed["cursor"] is None
    page = (await client.get("/summaries", params={"limit": 1})).json()
    assert [s["summaryId"] for s in page["results"]] == [b]
    rest = (await client.get("/summaries", params={"limit": 1, "cursor": page["cursor"]})).json()
    assert [s["summaryId"] for s in rest["results"]] == [a] and rest["cursor"] is None

    r = await client.post("/summaries", json={"transcriptionId": pending})
    assert r.status_code == 409 and r.json() == {"error": "The transcription is not ready yet",
                                                 "data": {"state": "in_progress"}}
    assert (await client.post("/summaries", json={"transcriptionId": str(uuid.uuid4())})).status_code == 404
    r = await client.post("/summaries", json={"transcriptionId": ready, "template": "Haiku"})
    assert r.status_code == 400 and "template" in r.json()["data"]
    assert (await client.post("/summaries", json={})).status_code == 400
    assert (await client.get("/summaries", params={"sortBy": "mood"})).status_code == 400
    import httpx

    async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=other_org.headers, timeout=30) as other:
        assert (await other.get(f"/summaries/{a}")).status_code == 404
        assert (await other.post("/summaries", json={"transcriptionId": ready})).status_code == 404
        assert (await other.delete(f"/summaries/{a}")).status_code == 204
    assert (await client.get(f"/summaries/{a}")).status_code == 200
    assert (await client.delete(f"/summaries/{a}")).status_code == 204
    assert (await client.delete(f"/summaries/{a}")).status_code == 204
    assert (await client.get(f"/summaries/{a}")).status_code == 404
