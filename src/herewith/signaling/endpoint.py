"""The signaling WebSocket: ``/signal/{roomName}`` (room name without the leading slash).

Transport only: frames in and out, size and rate caps, keepalive, abuse accounting. It holds no room and
calls no room method: the first ``join`` goes to the router (:meth:`herewith.signaling.router.Router.
start_participant`, with this connection as its :class:`~herewith.signaling.router.MessageSink`), every later
message to the returned :class:`~herewith.signaling.router.ParticipantSignal`. Room rules live in
:mod:`herewith.signaling.service` and :mod:`herewith.signaling.live_room`; every message is one of
:mod:`herewith.signaling.protocol`.

- The first frame must be ``join`` (within 10 s). Frames over ``signaling_max_message_bytes`` get
  ``error too_large``, except a joined participant's ``sfu_answer`` up to ``signaling_max_answer_bytes`` (a
  group room page that receives everyone answers ~2 KB of SDP per publisher); more than
  ``signaling_rate_per_second`` (burst ``signaling_rate_burst``) get ``error rate_limited`` and are dropped; malformed frames get ``error malformed``. Each of these is a strike;
  after ``signaling_max_strikes`` the socket is closed with 1008.
- The server sends ``ping`` after ``signaling_ping_interval_seconds`` of silence and closes (1001) a socket
  silent for 2.5 intervals. Clients answer ``pong``.
- Outgoing frames go through a bounded queue per connection drained by one writer task, so a slow client
  never stalls a room; a client that falls 512 frames behind is disconnected.
- Before the handshake is accepted, the browser's ``Origin`` is checked (:func:`origin_allowed`): this
  server's pages and the sites allowed to embed rooms (``HEREWITH_FRAME_ANCESTORS``) get in, and so do
  programs, which send no ``Origin``; another site's page is refused (HTTP 403), so it cannot join a room on
  behalf of a visitor who opens it (cross-site WebSocket hijacking).

Usage (a Python client)::

    async with websockets.connect(f"{ws_url}/signal/{room}") as ws:
        await ws.send(json.dumps({"type": "join", "displayName": "Ann"}))
        joined = json.loads(await ws.recv())
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, WebSocket

from herewith.config import Settings
from herewith.kit import metrics
from herewith.signaling import protocol as p
from herewith.signaling.live_room import CLOSE_NORMAL, CLOSE_POLICY
from herewith.signaling.router import ParticipantSignal, Router

log = structlog.get_logger(__name__)

router = APIRouter()

JOIN_TIMEOUT_SECONDS = 10.0
QUEUE_LIMIT = 512
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN = 1013


class Connection:
    """One WebSocket as a :class:`~herewith.signaling.router.MessageSink`: a bounded queue of frames and one
    writer task. ``send_text`` and ``close`` never block and never raise."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | tuple[int, str]] = asyncio.Queue(QUEUE_LIMIT)
        self.closing = False
        self.closed = asyncio.Event()
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def send_text(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("signaling_slow_consumer")
            self.closing = True
            self.writer.cancel()
            asyncio.get_running_loop().create_task(self._close_now(CLOSE_TRY_AGAIN, "too slow"))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self.closing:
            return
        self.closing = True
        try:
            self.queue.put_nowait((code, reason))
        except asyncio.QueueFull:
            self.writer.cancel()
            asyncio.get_running_loop().create_task(self._close_now(code, reason))

    async def _close_now(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - already closed
            pass
        self.closed.set()

    async def _write(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, tuple):
                    await self._close_now(*item)
                    return
                await self.ws.send_text(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the peer went away; the reader notices
            self.closing = True
            self.closed.set()


class Budget:
    """Token bucket: ``rate`` frames per second with a burst of ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A CSP host source as HEREWITH_FRAME_ANCESTORS gives it (herewith.kit.security_headers.check_sources):
# [scheme://][*.]host[:port|:*]
_HOST_SOURCE = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>(?:\*\.)?[a-z0-9.-]+)(?::(?P<port>\d+|\*))?$")


def _origin_parts(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin or URL, lower-cased, the port made explicit; None if unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    return (scheme, host, port) if port is not None else None


def _source_allows(source: str, scheme: str, host: str, port: int) -> bool:
    """Whether one CSP source expression admits the origin ``scheme://host:port`` (CSP Level 3, "Does url
    match expression": a scheme source ``https:``; a host source with an optional scheme, ``*.`` subdomains
    and ``:*`` ports; ``http`` in a source also admits ``https``)."""
    source = source.strip().lower()
    if source in ("'self'", "'none'"):
        return False  # 'self' is this server: admitted before the sources are read
    if source.endswith(":") and "/" not in source:
        wanted = source[:-1]
        return scheme == wanted or (wanted == "http" and scheme == "https")
    match = _HOST_SOURCE.match(source)
    if match is None:
        return False
    wanted = match["scheme"]
    if wanted is None:
        if scheme not in ("http", "https"):
            return False
    elif not (scheme == wanted or (wanted == "http" and scheme == "https")):
        return False
    pattern = match["host"]
    if pattern.startswith("*."):
        if not host.endswith(pattern[1:]):
            return False
    elif host != pattern:
        return False
    if match["port"] == "*":
        return True
    if match["port"] is not None:
        return port == int(match["port"])
    return port == _DEFAULT_PORTS.get(scheme) or (wanted == "http" and scheme == "https" and port == 443)


def origin_allowed(origin: str | None, host: str | None, public_url: str, sources: Sequence[str]) -> bool:
    """Whether a WebSocket handshake with this ``Origin`` header may join rooms.

    Admitted: no ``Origin`` (a program, not a browser; browsers always send one); ``sources`` containing ``*``
    (any site may embed rooms, the default); the origin of ``public_url`` (this server's own room page); an
    origin whose host and port are the request's ``Host`` (the page was reached by another name, as
    :class:`~herewith.kit.security_headers.SecurityHeaders` allows); an origin one of ``sources`` admits
    (the ``HEREWITH_FRAME_ANCESTORS`` CSP sources: ``https://app.example.com``, ``https://*.example.com``,
    ``https:``). Everything else, ``null`` (sandboxed frames, files) included, is refused.
    """
    if origin is None or "*" in sources:
        return True
    parts = _origin_parts(origin)
    if parts is None:
        return False
    scheme, origin_host, port = parts
    if parts == _origin_parts(public_url):
        return True
    if host:
        own = _origin_parts(f"{scheme}://{host}")
        if own is not None and own == parts:
            return True
    return any(_source_allows(source, scheme, origin_host, port) for source in sources)


def _is_big_answer(text: str, limit: int) -> bool:
    """Whether a frame over the general cap is an ``sfu_answer`` of at most ``limit`` bytes: the one message whose
    size grows with the room (its SDP has two m-lines per publisher the page receives)."""
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        return False
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(frame, dict) and frame.get("type") == "sfu_answer"


@router.websocket("/signal/{roomName}")
async def signal(ws: WebSocket, roomName: str) -> None:  # noqa: N803 - path name as in the contract
    """A participant's signaling connection to room ``/{roomName}``; refused with 403 before the handshake
    completes when another site's page opens it (:func:`origin_allowed`)."""
    settings: Settings = ws.state.settings
    router: Router = ws.state.signaling.router
    origin = ws.headers.get("origin")
    if not origin_allowed(origin, ws.headers.get("host"), settings.public_url, settings.frame_ancestors):
        log.info("signaling_origin_refused", origin=origin[:200] if origin else origin)
        await ws.close(CLOSE_POLICY)
        return
    await ws.accept()
    conn = Connection(ws)
    participant_id = secrets.token_urlsafe(9)
    budget = Budget(settings.signaling_rate_per_second, settings.signaling_rate_burst)
    max_bytes = settings.signaling_max_message_bytes
    max_answer = max(max_bytes, settings.signaling_max_answer_bytes)
    interval = settings.signaling_ping_interval_seconds
    strikes = 0
    signal: ParticipantSignal | None = None
    silent_since = time.monotonic()
    last_rate_error = 0.0

    def strike(code: p.ErrorCode, message: str, ref: str | None = None) -> bool:
        """Answer with an error; True when the connection has used up its strikes (then it is closed)."""
        nonlocal strikes
        strikes += 1
        conn.send_text(p.dump(p.error(code, message, ref)))
        if strikes >= settings.signaling_max_strikes:
            conn.close(CLOSE_POLICY, "too many bad messages")
            return True
        return False

    try:
        while not conn.closing:
            timeout = JOIN_TIMEOUT_SECONDS if signal is None else interval
            try:
                async with asyncio.timeout(timeout):
                    event = await ws.receive()
            except TimeoutError:
                if signal is None:
                    conn.send_text(p.dump(p.error(p.ErrorCode.NOT_JOINED, "Send join first")))
                    conn.close(CLOSE_POLICY, "no join")
                    break
                if time.monotonic() - silent_since > 2.5 * interval:
                    conn.close(CLOSE_GOING_AWAY, "keepalive timeout")
                    break
                conn.send_text('{"type":"ping"}')
                continue
            if event["type"] == "websocket.disconnect":
                break
            silent_since = time.monotonic()
            text: Any = event.get("text")
            if text is None:
                if strike(p.ErrorCode.MALFORMED, "Binary frames are not accepted; send JSON text"):
                    break
                continue
            if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
                if signal is None or not _is_big_answer(text, max_answer):
                    message = f"Frames are limited to {max_bytes} bytes ({max_answer} for sfu_answer)"
                    if strike(p.ErrorCode.TOO_LARGE, message):
                        break
                    continue
            if not budget.take():
                metrics.RATE_LIMIT_REFUSALS.labels("signaling").inc()
                # Every dropped frame is a strike; the error goes out at most once a second (never an amplifier).
                now = time.monotonic()
                if now - last_rate_error > 1.0:
                    last_rate_error = now
                    if strike(p.ErrorCode.RATE_LIMITED, "Too many messages; slow down"):
                        break
                else:
                    strikes += 1
                    if strikes >= settings.signaling_max_strikes:
                        conn.close(CLOSE_POLICY, "too many messages")
                        break
                continue
            try:
                msg = p.parse_client_message(text)
            except p.ProtocolError as exc:
                if strike(exc.code, exc.message):
                    break
                continue
            metrics.SIGNALING_MESSAGES.labels(msg.type).inc()
            try:
                if signal is None:
                    if msg.type == "ping":
                        conn.send_text('{"type":"pong"}')
                        continue
                    if not isinstance(msg, p.Join):
                        if strike(p.ErrorCode.NOT_JOINED, "Send join first", msg.type):
                            break
                        continue
                    signal = await router.start_participant(roomName, participant_id, msg, conn)
                    if signal is None:  # refused: the error and the close are queued on conn
                        break
                else:
                    started = time.perf_counter()
                    await signal.send(msg)
                    metrics.SIGNALING_RELAY_SECONDS.labels(msg.type).observe(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - no frame may crash the server
                log.exception("signaling_handler_failed", type=getattr(msg, "type", None))
                conn.send_text(p.dump(p.error(p.ErrorCode.INTERNAL, "Internal error", getattr(msg, "type", None))))
    except Exception:  # noqa: BLE001 - transport errors end this connection only
        log.debug("signaling_receive_failed", exc_info=True)
    finally:
        if signal is not None:
            try:
                await signal.close()
            except Exception:  # noqa: BLE001
                log.exception("signaling_leave_failed")
        conn.close(CLOSE_NORMAL, "")
        try:
            async with asyncio.timeout(5):
                await conn.writer
        except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
            conn.writer.cancel()
