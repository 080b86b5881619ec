"""Join storms against a server that gets killed: the client side and the outbox reading, shared by
``tests/signaling/test_join_durability.py`` and ``bench/join_storm.py``."""

from __future__ import annotations

import asyncio
import json

import websockets
from sqlalchemy import select

from herewith.config import Settings
from herewith.db.engine import create_engine, create_sessionmaker
from herewith.webhooks.models import WebhookEvent


async def join_and_stay(ws_url: str, room_name: str, acknowledged: list[tuple[str, str]]) -> None:
    """Open a signaling connection, send ``join``, and append ``(room_name, participantId)`` to
    ``acknowledged`` when ``joined`` comes back; then stay until the server goes (at most 10 s). Never raises
    for a server that dies."""
    try:
        async with websockets.connect(f"{ws_url}/signal/{room_name.lstrip('/')}", open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "join", "displayName": "storm"}))
            async with asyncio.timeout(10):
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "joined":
                        acknowledged.append((room_name, msg["participantId"]))
                    elif msg.get("type") == "error":
                        return
    except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
        return


async def outbox_events(settings: Settings) -> list[dict]:
    """Every webhook event envelope in the database's outbox (one per event and endpoint)."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return [json.loads(row.payload) for row in (await session.scalars(select(WebhookEvent))).all()]
    finally:
        await engine.dispose()


def lost(acknowledged: list[tuple[str, str]], events: list[dict]) -> tuple[list[str], list[str]]:
    """The acknowledged participant ids without a ``room.client.joined`` event, and the rooms where two or
    more were acknowledged without a ``room.session.started``."""
    recorded = {e["data"].get("participantId") for e in events if e["type"] == "room.client.joined"}
    started = {e["data"].get("roomName") for e in events if e["type"] == "room.session.started"}
    per_room: dict[str, int] = {}
    for room, _ in acknowledged:
        per_room[room] = per_room.get(room, 0) + 1
    return ([pid for _, pid in acknowledged if pid not in recorded],
            [room for room, n in per_room.items() if n >= 2 and room not in started])
