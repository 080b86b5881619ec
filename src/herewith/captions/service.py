"""The rules of live transcription that need no process: a meeting's options, the live transcript's text, and
where it is stored.

- :func:`live_options`: the meeting's ``liveTranscription`` (CONTRACT.md, "Meetings") as :class:`LiveOptions`;
- :func:`store_live_transcription`: a room session's final captions stored as a ``LIVE_TRANSCRIPTION``
  transcription (the transcriptions domain writes the Markdown and the webhooks);
- :func:`keep_caption_lines` / :func:`forget_caption_lines`: a running session's final captions in the
  database as they come (herewith.captions.models), and gone once its transcript is stored;
- :func:`store_orphaned_captions`: what a node that stopped beating (killed mid-session) left, stored as its
  sessions' transcripts by another node.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.captions.models import CaptionLineRow
from herewith.config import Settings
from herewith.meetings import repository as meetings
from herewith.sessions.models import Node, RoomSession
from herewith.transcriptions import service as transcriptions
from herewith.transcriptions.transcript import Utterance

MAX_LINES = 20_000  # final captions kept per room session (about 30 hours of one-sentence turns)
SPEECH_DEPENDENCIES = ("faster_whisper", "aiortc", "av", "websockets")  # the speech extra, as live captions use it


@dataclass(frozen=True)
class LiveOptions:
    """``liveTranscription`` of a meeting: ``start_trigger`` none | manual | automatic |
    automatic-2nd-participant, ``live_captions`` (shown in the room), ``language`` (None: the model's)."""

    start_trigger: str
    live_captions: bool
    language: str | None

    @property
    def enabled(self) -> bool:
        return self.start_trigger != "none"

    def public(self) -> dict[str, Any]:
        return {"startTrigger": self.start_trigger, "liveCaptions": self.live_captions, "language": self.language}


def live_options(meeting: Any) -> LiveOptions:
    """The meeting's live transcription options; no ``liveTranscription`` (or a null ``startTrigger``) is
    ``none``. ``liveCaptions`` null counts as true: a meeting that asks for live transcription shows it
    unless it says otherwise."""
    raw = getattr(meeting, "live_transcription", None) or {}
    language = raw.get("language") or None
    captions = raw.get("liveCaptions")
    return LiveOptions(start_trigger=raw.get("startTrigger") or "none",
                       live_captions=True if captions is None else bool(captions), language=language)


@dataclass(frozen=True)
class CaptionLine:
    """One final caption: when the server relayed it, whose words (participantId, display name), the words."""

    at: datetime
    participant_id: str
    display_name: str | None
    text: str


def missing_speech_dependencies() -> list[str]:
    """The modules of the speech extra that are not installed (empty: live captions can run here)."""
    return [name for name in SPEECH_DEPENDENCIES if importlib.util.find_spec(name) is None]


async def store_live_transcription(session: AsyncSession, meeting_id: str, room_name: str, started_at: datetime,
                                   ended_at: datetime, lines: list[CaptionLine], now: datetime,
                                   settings: Settings) -> str | None:
    """Store a room session's final captions as a ready ``LIVE_TRANSCRIPTION`` of its meeting (the Markdown
    transcript of :func:`herewith.transcriptions.transcript.render_markdown`: one ``[hh:mm:ss] Name: words``
    line per caption, times from ``started_at``) with the ``transcription.started`` and ``.finished``
    webhooks, through :func:`herewith.transcriptions.service.store_live_transcript`. The room session is the
    meeting's latest one that began before ``ended_at`` (None when two people never met). Returns the
    transcription id, or None when the meeting is gone. Flushes; the caller commits."""
    meeting = await meetings.get_by_id(session, meeting_id)
    if meeting is None:
        return None
    room_session_id = await session.scalar(
        select(RoomSession.id).where(RoomSession.meeting_id == meeting_id, RoomSession.started_at <= ended_at)
        .order_by(RoomSession.started_at.desc()).limit(1))
    utterances = [Utterance(start=max(0.0, (line.at - started_at).total_seconds()),
                            speaker=line.display_name or f"Participant {line.participant_id[:8]}", text=line.text)
                  for line in lines]
    language = live_options(meeting).language
    t = await transcriptions.store_live_transcript(session, meeting, room_session_id, started_at, ended_at,
                                                   utterances, language, now, settings)
    return t.id


@dataclass(frozen=True)
class KeptLine:
    """A final caption to keep for the session of ``room_name`` (of ``meeting_id``) whose captions began at
    ``session_started_at``."""

    meeting_id: str
    room_name: str
    session_started_at: datetime
    line: CaptionLine


async def keep_caption_lines(session: AsyncSession, node_id: str, lines: list[KeptLine]) -> None:
    """Insert running sessions' final captions, kept by node ``node_id``. Flushes; the caller commits."""
    session.add_all([CaptionLineRow(node_id=node_id, meeting_id=k.meeting_id, room_name=k.room_name,
                                    session_started_at=k.session_started_at, at=k.line.at,
                                    participant_id=k.line.participant_id, display_name=k.line.display_name,
                                    text=k.line.text) for k in lines])
    await session.flush()


async def forget_caption_lines(session: AsyncSession, node_id: str, room_name: str,
                               session_started_at: datetime) -> None:
    """Delete the kept captions of one session of node ``node_id`` (its transcript is stored). Never commits."""
    await session.execute(delete(CaptionLineRow).where(
        CaptionLineRow.node_id == node_id, CaptionLineRow.room_name == room_name,
        CaptionLineRow.session_started_at == session_started_at))


async def store_orphaned_captions(session: AsyncSession, own_node_id: str, now: datetime, settings: Settings,
                                  limit: int = 10) -> list[str]:
    """Store the kept captions of nodes that stopped beating (no node row, stopped, or silent for
    ``node_dead_after_seconds``; never ``own_node_id``): one ``LIVE_TRANSCRIPTION`` per session, ended at its
    last caption, then the rows are deleted. Up to ``limit`` sessions a call (the rest next time). Returns the
    new transcription ids. Flushes; the caller commits."""
    dead_before = now - timedelta(seconds=settings.node_dead_after_seconds)
    alive = select(Node.id).where(Node.stopped_at.is_(None), Node.last_seen_at >= dead_before)
    sessions = (await session.execute(
        select(CaptionLineRow.node_id, CaptionLineRow.room_name, CaptionLineRow.session_started_at)
        .where(CaptionLineRow.node_id != own_node_id, CaptionLineRow.node_id.not_in(alive))
        .group_by(CaptionLineRow.node_id, CaptionLineRow.room_name, CaptionLineRow.session_started_at)
        .limit(limit))).all()
    stored: list[str] = []
    for node_id, room_name, started_at in sessions:
        rows = (await session.scalars(
            select(CaptionLineRow).where(CaptionLineRow.node_id == node_id, CaptionLineRow.room_name == room_name,
                                         CaptionLineRow.session_started_at == started_at)
            .order_by(CaptionLineRow.seq).with_for_update(skip_locked=True))).all()
        if not rows:  # another node took them meanwhile
            continue
        transcription_id = await store_live_transcription(
            session, rows[0].meeting_id, room_name, started_at, rows[-1].at,
            [CaptionLine(at=r.at, participant_id=r.participant_id, display_name=r.display_name, text=r.text)
             for r in rows], now, settings)
        if transcription_id is not None:
            stored.append(transcription_id)
        await session.execute(delete(CaptionLineRow).where(CaptionLineRow.seq.in_([r.seq for r in rows])))
    return stored
