"""Async client of the Janus WebRTC gateway's API (and its admin API).

Herewith is the only control plane of its Janus instances: it creates the VideoRoom rooms of group
rooms, moderates them and destroys them. This module speaks two of Janus's transports
(https://janus.conf.meetecho.com/docs/rest.html), chosen by the scheme of the API URL:

* ``ws://`` / ``wss://`` - the WebSocket transport (subprotocol ``janus-protocol``, the ``websockets``
  library): ONE connection per :class:`JanusClient` carries the requests and events of all its sessions.
  Requests are matched to their answers by ``transaction``; events are routed to their session by
  ``session_id``. Janus destroys the sessions of a connection when it closes, so a dropped connection
  marks every session lost (:attr:`JanusSession.lost`) and the next request opens a new connection.
* ``http://`` / ``https://`` - the REST transport (httpx): one POST per request, and one long poll
  (``GET /janus/<session>``) per session for its events. Each event Janus sends to N sessions then costs
  N HTTP answers and N new polls: with the VideoRoom sending ``talking`` events to every publisher of a
  room, the WebSocket transport is the one for big rooms.

The admin API (tokens, sessions, handle info) always goes over HTTP (``admin_url``).

* :class:`JanusClient` - one Janus instance: ``info``, sessions, and the admin API.
* :class:`JanusSession` - a Janus session; it receives its events (long poll, or the shared WebSocket)
  and sends a ``keepalive`` every ``keepalive_interval`` seconds (Janus drops idle sessions after its
  ``session_timeout``, 60 s by default).
* :class:`JanusHandle` - a plugin handle: ``request`` (synchronous plugin request), ``message``
  (asynchronous request whose answer is the event carrying the same transaction), ``trickle``,
  ``detach``; other events of the handle (``webrtcup``, ``media``, ``hangup``, unsolicited plugin
  events) go to its queue, read with :meth:`JanusHandle.wait_for` / :meth:`JanusHandle.next_event`.
* :class:`VideoRoomAdmin` - the VideoRoom management requests over a handle.

Usage::

    async with JanusClient("ws://127.0.0.1:8188", api_secret=s) as janus:   # or http://127.0.0.1:8088/janus
        session = await janus.create_session()
        rooms = VideoRoomAdmin(await session.attach(VIDEOROOM), admin_key=k)
        await rooms.create_room(1234, description="standup", publishers=200, secret=room_secret)
        ...
        await session.destroy()

Errors: :class:`JanusError` (Janus answered with an error: ``code`` and ``reason``, core or plugin
codes), :class:`JanusUnavailable` (transport failure: connection refused, timeout, unreadable
answer), :class:`JanusSessionLost` (the session is gone, e.g. Janus restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

__all__ = [
    "VIDEOROOM",
    "JanusClient",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "JanusSessionLost",
    "JanusUnavailable",
    "VideoRoomAdmin",
]

VIDEOROOM = "janus.plugin.videoroom"
WS_SUBPROTOCOL = "janus-protocol"  # Janus's WebSocket transport refuses connections without it

log = logging.getLogger(__name__)

Json = dict[str, Any]

# Janus core error codes (janus/apierror.h) that callers may want to test for.
JANUS_ERROR_SESSION_NOT_FOUND = 458
JANUS_ERROR_HANDLE_NOT_FOUND = 459
JANUS_ERROR_UNAUTHORIZED = 403
# VideoRoom plugin error codes (plugins/janus_videoroom.c).
VIDEOROOM_ERROR_NO_SUCH_ROOM = 426
VIDEOROOM_ERROR_ROOM_EXISTS = 427
VIDEOROOM_ERROR_NO_SUCH_FEED = 428
VIDEOROOM_ERROR_UNAUTHORIZED = 433


class JanusError(Exception):
    """Janus answered a request with an error.

    ``code`` is the Janus error code (core codes such as 403 unauthorized or 458 no such session, or a
    plugin's codes such as VideoRoom's 426 no such room, 433 unauthorized); ``reason`` is Janus's text.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusUnavailable(Exception):
    """Janus could not be reached or gave no usable answer (connection refused, timeout, bad JSON)."""


class JanusSessionLost(JanusUnavailable):
    """The Janus session no longer exists (Janus restarted, or the session timed out)."""


def _transaction() -> str:
    return secrets.token_hex(8)


def _raise_for_janus(resp: Json) -> Json:
    if resp.get("janus") == "error":
        err = resp.get("error") or {}
        code = int(err.get("code", 0))
        if code == JANUS_ERROR_SESSION_NOT_FOUND:
            raise JanusSessionLost(f"Janus error {code}: {err.get('reason', '')}")
        raise JanusError(code, str(err.get("reason", "")))
    return resp


def _plugin_data(resp: Json) -> Json:
    """The plugin's answer in a ``success``/``event`` message; raises :class:`JanusError` on a plugin error."""
    data: Json = (resp.get("plugindata") or {}).get("data") or {}
    if "error_code" in data or "error" in data:
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "")))
    return data


class _WebSocketTransport:
    """The one WebSocket connection of a :class:`JanusClient` to Janus's WebSocket transport.

    ``websockets`` does the WebSocket protocol; this class only multiplexes (no Janus client library is a
    dependency: the routing below is the same one the HTTP transport needs, a few lines):
    answers (``ack``, ``success``, ``error``, ``server_info``) go to the request that carries the same
    ``transaction``; everything else (``event``, ``webrtcup``, ``media``, ``hangup``, ``detached``,
    ``timeout``, ...) goes to the session named by ``session_id``. The connection is opened on the first
    request and again after it closed; its close marks the sessions registered on it lost.
    """

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.sessions: dict[int, JanusSession] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._replies: dict[str, asyncio.Future[Json]] = {}
        self._closed = False

    async def _connection(self) -> ClientConnection:
        async with self._lock:
            if self._closed:
                raise JanusUnavailable(f"{self.url}: client closed")
            if self._ws is None:
                try:
                    ws = await connect(
                        self.url, subprotocols=[WS_SUBPROTOCOL],  # type: ignore[list-item]
                        open_timeout=self.timeout,
                        compression=None,  # loopback or LAN: deflating every event costs CPU for nothing
                        max_size=None,  # SDP of a 100-stream subscription is ~100 KB; Janus is trusted
                        proxy=None,  # never route Janus traffic through an environment proxy
                        ping_interval=15, ping_timeout=10,  # a Janus that stopped answering: sessions lost
                    )
                except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                    raise JanusUnavailable(f"{self.url}: {exc!r}") from exc
                self._ws = ws
                self._reader = asyncio.create_task(self._read(ws), name=f"janus-ws-{self.url}")
            return self._ws

    async def request(self, message: Json, *, timeout: float) -> Json:
        """Send ``message`` (it has a ``transaction``) and return Janus's answer to it."""
        ws = await self._connection()
        transaction = str(message["transaction"])
        fut: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._replies[transaction] = fut
        try:
            if self._ws is not ws:  # closed while we waited for the lock: _gone failed the replies before ours
                raise JanusUnavailable(f"{self.url}: connection closed")
            await ws.send(json.dumps(message))
            return await asyncio.wait_for(fut, timeout)
        except ConnectionClosed as exc:
            raise JanusUnavailable(f"{self.url}: connection closed ({exc})") from exc
        except TimeoutError as exc:
            raise JanusUnavailable(f"{self.url}: no answer to {message.get('janus')} within {timeout} s") from exc
        finally:
            self._replies.pop(transaction, None)

    async def _read(self, ws: ClientConnection) -> None:
        reason = "connection closed"
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("janus %s: unreadable message dropped", self.url)
                    continue
                if isinstance(msg, dict):
                    self._route(msg)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except Exception as exc:  # a bug in a dispatch must not leave the sessions silently deaf
            log.exception("janus %s: reader failed", self.url)
            reason = f"reader failed: {exc!r}"
        finally:
            self._gone(ws, reason)

    def _route(self, msg: Json) -> None:
        transaction = msg.get("transaction")
        if transaction is not None and msg.get("janus") != "event":
            fut = self._replies.pop(str(transaction), None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(msg)
                return
        session_id = msg.get("session_id")
        session = self.sessions.get(int(session_id)) if isinstance(session_id, int) else None
        if session is not None:
            session._dispatch(msg)

    def _gone(self, ws: ClientConnection, reason: str) -> None:
        """The connection ``ws`` closed: fail its pending requests, mark its sessions lost."""
        if self._ws is not ws:
            return
        self._ws = None
        self._reader = None
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(JanusUnavailable(f"{self.url}: {reason}"))
        self._replies.clear()
        sessions, self.sessions = self.sessions, {}
        for session in sessions.values():
            session._mark_lost(f"Janus WebSocket {reason}")

    async def aclose(self) -> None:
        self._closed = True
        ws, reader = self._ws, self._reader
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(reader, 5)
        if ws is not None:
            self._gone(ws, "client closed")


class JanusClient:
    """One Janus instance, reached over its WebSocket or HTTP transport (by the scheme of ``base_url``).

    ``base_url`` is the Janus API root: ``ws://127.0.0.1:8188`` (WebSocket transport: one connection for
    all the sessions of this client) or ``http://127.0.0.1:8088/janus`` (REST transport: one long poll per
    session). ``api_secret`` is sent as ``apisecret`` with every request (Janus ``general.api_secret``);
    ``token`` is sent as ``token`` instead, for a client holding a per-participant token
    (``token_auth``). ``admin_url`` (``http://127.0.0.1:7088/admin``, always HTTP) and ``admin_secret``
    enable the admin API methods. ``timeout`` is the per-request timeout in seconds (the long poll uses
    its own, longer one).

    Raises :class:`JanusUnavailable` on transport failures and :class:`JanusError` on Janus errors;
    :class:`ValueError` for a ``base_url`` that is neither ``ws(s)://`` nor ``http(s)://``.
    """

    def __init__(
        self,
        base_url: str,
        api_secret: str | None = None,
        admin_url: str | None = None,
        admin_secret: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        scheme = urlsplit(self.base_url).scheme.lower()
        if scheme in ("ws", "wss"):
            self.transport = "websocket"
        elif scheme in ("http", "https"):
            self.transport = "http"
        else:
            raise ValueError(f"Janus URL must start with ws://, wss://, http:// or https://: {base_url!r}")
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self.api_secret = api_secret
        self.admin_secret = admin_secret
        self.token = token
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            trust_env=False,  # never route Janus traffic through an environment proxy
        )
        self._ws = _WebSocketTransport(self.base_url, timeout=timeout) if self.transport == "websocket" else None

    async def __aenter__(self) -> JanusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the WebSocket and the HTTP connection pool (sessions created by this client are lost)."""
        if self._ws is not None:
            await self._ws.aclose()
        await self._http.aclose()

    # -- transport -------------------------------------------------------------------------------
    def _auth(self) -> Json:
        auth: Json = {}
        if self.api_secret:
            auth["apisecret"] = self.api_secret
        if self.token:
            auth["token"] = self.token
        return auth

    async def _send(self, url: str, message: Json, *, timeout: float | None = None) -> Json:
        try:
            r = await self._http.post(url, json=message, timeout=timeout or self.timeout)
            resp = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JanusUnavailable(f"{url}: {exc!r}") from exc
        if not isinstance(resp, dict):
            raise JanusUnavailable(f"{url}: unexpected answer {resp!r}")
        return _raise_for_janus(resp)

    async def send(
        self, message: Json, *, session_id: int | None = None, handle_id: int | None = None, timeout: float | None = None
    ) -> Json:
        """Send ``message`` (a Janus request, without transaction/secret) to the instance, a session or a handle.

        Returns Janus's JSON answer (``success``, ``ack``, ``server_info``, ...). A fresh ``transaction``
        is added unless ``message`` has one. Over HTTP the target is the URL path (``/<session>/<handle>``),
        over the WebSocket the ``session_id``/``handle_id`` fields. ``timeout`` is in seconds.
        """
        body = {"transaction": _transaction(), **message, **self._auth()}
        if self._ws is None:
            path = "".join(f"/{i}" for i in (session_id, handle_id) if i is not None)
            return await self._send(self.base_url + path, body, timeout=timeout)
        if session_id is not None:
            body["session_id"] = session_id
        if handle_id is not None:
            body["handle_id"] = handle_id
        return _raise_for_janus(await self._ws.request(body, timeout=timeout or self.timeout))

    async def long_poll(self, session_id: int, *, maxev: int = 10, timeout: float = 40.0) -> list[Json]:
        """One long poll (HTTP transport): up to ``maxev`` events of the session (Janus answers a keepalive
        after 30 s)."""
        params: dict[str, str | int] = {"maxev": maxev, **self._auth()}
        try:
            r = await self._http.get(f"{self.base_url}/{session_id}", params=params, timeout=timeout)
            resp = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JanusUnavailable(f"long poll: {exc!r}") from exc
        events = resp if isinstance(resp, list) else [resp]
        for ev in events:
            _raise_for_janus(ev)
        return events

    async def info(self) -> Json:
        """Janus's ``info`` (version, plugins, transports, settings). Needs no session."""
        if self._ws is not None:
            return await self.send({"janus": "info"})
        try:
            r = await self._http.get(f"{self.base_url}/info", params=self._auth())
            resp = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JanusUnavailable(f"info: {exc!r}") from exc
        return _raise_for_janus(resp)

    async def create_session(self, *, keepalive_interval: float = 25.0) -> JanusSession:
        """Create a Janus session, start receiving its events and its keepalive; returns the session.

        ``keepalive_interval`` is in seconds and must stay under Janus's ``session_timeout`` (60 s).
        """
        resp = await self.send({"janus": "create"})
        session = JanusSession(self, int(resp["data"]["id"]), keepalive_interval=keepalive_interval)
        if self._ws is not None:
            self._ws.sessions[session.id] = session
        session._start()
        return session

    def _session_gone(self, session: JanusSession) -> None:
        if self._ws is not None and self._ws.sessions.get(session.id) is session:
            del self._ws.sessions[session.id]

    # -- admin API -------------------------------------------------------------------------------
    async def admin(self, request: str, path: str = "", **fields: Any) -> Json:
        """An admin API request (``{"janus": request, **fields}``) to ``admin_url + path``; returns the answer.

        Raises :class:`RuntimeError` when no ``admin_url`` was given.
        """
        if not self.admin_url:
            raise RuntimeError("JanusClient has no admin_url")
        body: Json = {"janus": request, "transaction": _transaction(), **fields}
        if self.admin_secret:
            body["admin_secret"] = self.admin_secret
        return await self._send(self.admin_url + path, body)

    async def add_token(self, token: str, plugins: Iterable[str] = (VIDEOROOM,)) -> list[str]:
        """Allow ``token`` (core ``token_auth``) to use the API, limited to ``plugins``; returns those plugins."""
        resp = await self.admin("add_token", token=token, plugins=list(plugins))
        return list((resp.get("data") or {}).get("plugins", []))

    async def remove_token(self, token: str) -> None:
        """Revoke ``token``: Janus refuses new requests carrying it (existing handles stay up)."""
        await self.admin("remove_token", token=token)

    async def list_tokens(self) -> list[Json]:
        """The stored tokens: ``[{"token": str, "allowed_plugins": [str]}]``."""
        resp = await self.admin("list_tokens")
        return list((resp.get("data") or {}).get("tokens", []))

    async def list_sessions(self) -> list[int]:
        """Ids of all live Janus sessions (any client's)."""
        return [int(s) for s in (await self.admin("list_sessions")).get("sessions", [])]

    async def list_handles(self, session_id: int) -> list[int]:
        """Ids of the handles of a session."""
        return [int(h) for h in (await self.admin("list_handles", f"/{session_id}")).get("handles", [])]

    async def handle_info(self, session_id: int, handle_id: int) -> Json:
        """Janus's ``handle_info``: plugin, ICE/DTLS state, plugin-specific data of a handle."""
        resp = await self.admin("handle_info", f"/{session_id}/{handle_id}")
        return dict(resp.get("info") or {})

    async def destroy_session(self, session_id: int) -> None:
        """Destroy any client's session through the admin API (``destroy_session``); its handles hang up."""
        await self.admin("destroy_session", f"/{session_id}")


class JanusSession:
    """A Janus session: receives its events, keeps itself alive, and routes events to its handles.

    Created by :meth:`JanusClient.create_session`. ``lost`` is set when the session ends for good
    (destroyed, timed out, or Janus went away: then ``lost_reason`` says why); pending requests then fail
    with :class:`JanusSessionLost`.
    """

    def __init__(self, client: JanusClient, session_id: int, *, keepalive_interval: float = 25.0) -> None:
        self.client = client
        self.id = session_id
        self.keepalive_interval = keepalive_interval
        self.handles: dict[int, JanusHandle] = {}
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self._pending: dict[str, asyncio.Future[Json]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._keepalive(), name=f"janus-keepalive-{self.id}")]
        if self.client.transport == "http":  # over the WebSocket, the client's reader dispatches our events
            self._tasks.append(asyncio.create_task(self._poll(), name=f"janus-poll-{self.id}"))

    async def send(self, message: Json, *, handle_id: int | None = None, timeout: float | None = None) -> Json:
        """Send ``message`` to the session (or one of its handles); raises :class:`JanusSessionLost` once lost."""
        if self.lost.is_set():
            raise JanusSessionLost(self.lost_reason or "session lost")
        try:
            return await self.client.send(message, session_id=self.id, handle_id=handle_id, timeout=timeout)
        except JanusSessionLost as exc:
            self._mark_lost(str(exc))
            raise

    async def attach(self, plugin: str = VIDEOROOM, *, opaque_id: str | None = None) -> JanusHandle:
        """Attach a handle to ``plugin``; returns it. ``opaque_id`` tags it in the admin API."""
        msg: Json = {"janus": "attach", "plugin": plugin}
        if opaque_id:
            msg["opaque_id"] = opaque_id
        resp = await self.send(msg)
        handle = JanusHandle(self, int(resp["data"]["id"]), plugin)
        self.handles[handle.id] = handle
        return handle

    async def keepalive(self) -> None:
        """Send one ``keepalive`` (the background task does this every ``keepalive_interval`` s)."""
        await self.send({"janus": "keepalive"})

    async def destroy(self) -> None:
        """Destroy the session (its handles detach, their PeerConnections hang up) and stop polling.

        Safe to call twice, and after the session was lost.
        """
        try:
            if not self.lost.is_set():
                with contextlib.suppress(JanusError, JanusUnavailable):
                    await self.send({"janus": "destroy"})
        finally:
            self._mark_lost("destroyed")
            await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        self.client._session_gone(self)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(JanusSessionLost(reason))
        self._pending.clear()
        for handle in self.handles.values():
            handle._closed = True
            handle.events.put_nowait({"janus": "detached", "sender": handle.id, "reason": reason})
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _keepalive(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(self.keepalive_interval)
            try:
                await self.keepalive()
            except JanusSessionLost:
                return
            except (JanusError, JanusUnavailable):
                continue  # the poller decides whether Janus is gone

    async def _poll(self) -> None:
        failures = 0
        while not self.lost.is_set():
            try:
                events = await self.client.long_poll(self.id)
            except JanusSessionLost as exc:
                self._mark_lost(str(exc))
                return
            except (JanusError, JanusUnavailable) as exc:
                failures += 1
                if failures >= 3:  # ~1.5 s of Janus not answering at all: it is gone
                    self._mark_lost(f"Janus unreachable: {exc}")
                    return
                await asyncio.sleep(0.5)
                continue
            failures = 0
            for ev in events:
                self._dispatch(ev)

    def _dispatch(self, ev: Json) -> None:
        kind = ev.get("janus")
        if kind == "keepalive":
            return
        fut = self._pending.get(str(ev.get("transaction"))) if kind == "event" else None
        if fut is not None:
            del self._pending[str(ev.get("transaction"))]
            if not fut.done():
                fut.set_result(ev)
            return
        handle = self.handles.get(int(ev.get("sender") or 0))
        if handle is not None:
            if kind == "detached":
                handle._closed = True
                self.handles.pop(handle.id, None)
            handle.events.put_nowait(ev)
        elif kind == "timeout":
            self._mark_lost("session timed out")


class JanusHandle:
    """A handle attached to a plugin within a :class:`JanusSession`.

    ``events`` is an :class:`asyncio.Queue` of the handle's events that did not answer a request:
    ``webrtcup``, ``media``, ``slowlink``, ``hangup``, ``detached`` and unsolicited plugin ``event`` s
    (e.g. VideoRoom's ``publishers``, ``leaving``, ``kicked``).
    """

    def __init__(self, session: JanusSession, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: asyncio.Queue[Json] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once detached (by us, by Janus, or because the session was lost)."""
        return self._closed

    async def request(self, body: Json) -> Json:
        """A synchronous plugin request (VideoRoom ``create``, ``list``, ``kick``, ...).

        Returns the plugin's data (``plugindata.data``). Raises :class:`JanusError` with the plugin's
        ``error_code``/``error`` when the plugin refuses.
        """
        resp = await self.session.send({"janus": "message", "body": body}, handle_id=self.id)
        return _plugin_data(resp)

    async def message(self, body: Json, jsep: Json | None = None, *, timeout: float = 20.0) -> tuple[Json, Json | None]:
        """An asynchronous plugin request (VideoRoom ``join``, ``publish``, ``start``, ``configure``, ...).

        Janus answers ``ack``; the result is the plugin event carrying the same transaction. Returns
        ``(data, jsep)``: the plugin's data and the SDP it sent (``{"type", "sdp"}``) or None.
        ``timeout`` is in seconds. Raises :class:`JanusError` on a plugin error, :class:`TimeoutError`
        when no answer came in time, :class:`JanusSessionLost` if the session went away meanwhile.
        """
        transaction = _transaction()
        fut: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self.session._pending[transaction] = fut  # registered first: the event may beat the POST answer
        msg: Json = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            msg["jsep"] = jsep
        try:
            resp = await self.session.send(msg, handle_id=self.id)
            if resp.get("janus") == "success":  # a synchronous answer after all
                return _plugin_data(resp), resp.get("jsep")
            ev = await asyncio.wait_for(fut, timeout)
        finally:
            self.session._pending.pop(transaction, None)
        return _plugin_data(ev), ev.get("jsep")

    async def trickle(self, candidate: Json | None) -> None:
        """Send one ICE candidate (``{"candidate", "sdpMid", "sdpMLineIndex"}``), or None for end-of-candidates."""
        await self.session.send({"janus": "trickle", "candidate": candidate or {"completed": True}}, handle_id=self.id)

    async def hangup(self) -> None:
        """Close the handle's PeerConnection, keeping the handle."""
        await self.session.send({"janus": "hangup"}, handle_id=self.id)

    async def detach(self) -> None:
        """Detach the handle (leaves the room, closes its PeerConnection). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.session.handles.pop(self.id, None)
        with contextlib.suppress(JanusError, JanusSessionLost):
            await self.session.send({"janus": "detach"}, handle_id=self.id)

    async def next_event(self, timeout: float = 20.0) -> Json:
        """The next queued event of this handle; :class:`TimeoutError` after ``timeout`` seconds."""
        return await asyncio.wait_for(self.events.get(), timeout)

    async def wait_for(self, kind: str, timeout: float = 20.0, *, plugin_event: str | None = None) -> Json:
        """Skip events until one whose ``janus`` is ``kind`` (``webrtcup``, ``hangup``, ``event``...).

        With ``plugin_event``, an ``event`` must also carry that key in its plugin data (e.g.
        ``"leaving"``, ``"kicked"``). Raises :class:`TimeoutError` after ``timeout`` seconds in all.
        """
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.events.get()
                if ev.get("janus") != kind:
                    continue
                if plugin_event is None or plugin_event in ((ev.get("plugindata") or {}).get("data") or {}):
                    return ev


class VideoRoomAdmin:
    """Management requests of the Janus VideoRoom plugin over one handle.

    ``admin_key`` is the plugin's ``general.admin_key``: with it set in Janus, only holders of the key
    can create rooms. Each room also gets its own ``secret``, needed to destroy, edit, moderate and kick.
    Room ids are integers (the plugin's default, ``string_ids = false``).
    """

    def __init__(self, handle: JanusHandle, admin_key: str | None = None) -> None:
        self.handle = handle
        self.admin_key = admin_key

    async def _request(self, request: str, **fields: Any) -> Json:
        body = {"request": request, **{k: v for k, v in fields.items() if v is not None}}
        return await self.handle.request(body)

    async def create_room(
        self,
        room_id: int,
        *,
        secret: str,
        description: str = "",
        publishers: int = 200,
        is_private: bool = True,
        pin: str | None = None,
        allowed: list[str] | None = None,
        bitrate: int | None = None,
        videocodec: str | None = None,
        audiocodec: str | None = None,
        notify_joining: bool = True,
        record: bool = False,
        rec_dir: str | None = None,
        extra: Json | None = None,
    ) -> Json:
        """Create room ``room_id`` (in memory only: ``permanent`` is false) and return Janus's answer.

        ``publishers`` is the maximum of concurrent senders; ``bitrate`` is in bits per second;
        ``allowed`` (a list of tokens) turns on the room's access list: then only joins carrying one of
        those tokens are accepted (see :meth:`allowed`). ``extra`` adds any other ``create`` field.
        Raises :class:`JanusError` (427 room exists; 403/433 when the ``admin_key`` is missing or wrong).
        """
        return await self._request(
            "create",
            room=room_id,
            admin_key=self.admin_key,
            secret=secret,
            description=description or None,
            publishers=publishers,
            is_private=is_private,
            pin=pin,
            allowed=allowed,
            bitrate=bitrate,
            videocodec=videocodec,
            audiocodec=audiocodec,
            notify_joining=notify_joining,
            record=record,
            rec_dir=rec_dir,
            permanent=False,
            **(extra or {}),
        )

    async def destroy_room(self, room_id: int, *, secret: str) -> None:
        """Destroy the room; its participants are told (``destroyed`` event) and hung up.

        Raises :class:`JanusError` (426 no such room, 433 wrong secret).
        """
        await self._request("destroy", room=room_id, secret=secret, permanent=False)

    async def exists(self, room_id: int) -> bool:
        """Whether the room exists in this Janus instance."""
        return bool((await self._request("exists", room=room_id)).get("exists"))

    async def list_rooms(self) -> list[Json]:
        """All rooms (private ones too when this client holds the ``admin_key``)."""
        return list((await self._request("list", admin_key=self.admin_key)).get("list", []))

    async def list_participants(self, room_id: int) -> list[Json]:
        """Participants of a room: ``[{"id", "display", "publisher": bool, "talking"?}]``."""
        return list((await self._request("listparticipants", room=room_id)).get("participants", []))

    async def kick(self, room_id: int, participant_id: int, *, secret: str) -> None:
        """Kick a participant: Janus closes its publisher PeerConnection and removes it from the room."""
        await self._request("kick", room=room_id, id=participant_id, secret=secret)

    async def moderate(self, room_id: int, participant_id: int, mid: str, *, mute: bool, secret: str) -> None:
        """Mute (or unmute) one stream (``mid``) of a publisher: Janus stops relaying it to subscribers."""
        await self._request("moderate", room=room_id, id=participant_id, mid=mid, mute=mute, secret=secret)

    async def allowed(self, room_id: int, action: str, *, secret: str, tokens: list[str] | None = None) -> list[str]:
        """Edit the room's access list: ``action`` is ``enable``, ``disable``, ``add`` or ``remove``.

        Returns the tokens allowed afterwards.
        """
        resp = await self._request("allowed", room=room_id, action=action, allowed=tokens, secret=secret)
        return list(resp.get("allowed", []))

    async def enable_recording(self, room_id: int, record: bool, *, secret: str) -> None:
        """Start or stop recording all publishers of the room (``.mjr`` files in the room's ``rec_dir``)."""
        await self._request("enable_recording", room=room_id, record=record, secret=secret)
