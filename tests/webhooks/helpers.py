"""Test helpers: a webhook receiver on 127.0.0.1, room events published into a real server, polling.

Receivers listen on loopback, which the webhook target policy refuses by default
(``webhook_allow_private_targets``). Importing this module sets ``HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS=true``
in the environment unless it is set already, so that servers of tests elsewhere that use a :class:`Receiver`
(built from ``Settings(...)`` or ``herewith serve`` children, which read the environment) may deliver to it;
tests of the policy pass ``webhook_allow_private_targets=False`` explicitly.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from herewith.rooms.events import ParticipantInfo, RoomEvent
from tests.support.servers import free_port

os.environ.setdefault("HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that records every POST; ``status`` is what it answers.

    ``stop()`` closes the socket (connection refused: the receiver is down); ``start()`` listens again on
    the same port. ``delay`` (seconds) is how long it holds each request before answering; ``in_flight`` and
    ``max_in_flight`` count requests being held now and at most at once.
    """

    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer (e.g. Location)

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self.started = 0  # requests whose body was read (recorded only after ``delay``)
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.started += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    if outer.delay:
                        time.sleep(outer.delay)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                with outer._lock:
                    outer.received.append(Received({k: v for k, v in self.headers.items()}, body))
                try:
                    self.send_response(outer.status)
                    for name, value in outer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender went away (killed, or timed out)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = [r.json for r in self.received if r.body]
        return [e for e in items if type_ is None or e["type"] == type_]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


async def await_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def person(name: str, role: str = "visitor", **extra: Any) -> ParticipantInfo:
    return ParticipantInfo(participant_id=extra.pop("participant_id", str(uuid.uuid4())), role_name=role,
                           display_name=name, **extra)


class Room:
    """Drives a meeting's room by handing RoomEvents to the server's room event recorder, as the live room's
    events reach it.

    Keeps the list of people in the call, as the live room does, and stamps events with the server clock.
    """

    def __init__(self, server: Any, meeting: dict[str, Any], organization_id: str) -> None:
        self.server = server
        self.meeting = meeting
        self.organization_id = organization_id
        self.present: list[ParticipantInfo] = []

    def _event(self, type_: str, who: ParticipantInfo, at: datetime | None = None, stats: dict | None = None) -> RoomEvent:
        return RoomEvent(
            type=type_, room_name=self.meeting["roomName"], meeting_id=self.meeting["meetingId"],
            organization_id=self.organization_id, participant=who, at=at or self.server.clock.now(),
            participants=tuple(self.present), stats=stats,
        )

    def publish(self, event: RoomEvent) -> None:
        async def go() -> None:
            await self.server.services.recorder(event)

        self.server.run_coro(go())

    def join(self, who: ParticipantInfo) -> ParticipantInfo:
        self.present.append(who)
        self.publish(self._event("participant.joined", who))
        return who

    def leave(self, who: ParticipantInfo) -> None:
        self.present = [p for p in self.present if p.participant_id != who.participant_id]
        self.publish(self._event("participant.left", who))

    def knock(self, who: ParticipantInfo) -> None:
        self.publish(self._event("participant.knocked", who))

    def cancel_knock(self, who: ParticipantInfo) -> None:
        self.publish(self._event("participant.knock_cancelled", who))

    def stats(self, who: ParticipantInfo, **values: Any) -> None:
        self.publish(self._event("participant.stats", who, stats=values))
