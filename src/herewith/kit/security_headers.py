"""Security headers on every HTTP response: a pure ASGI middleware, :class:`SecurityHeaders`.

- every response: ``X-Content-Type-Options: nosniff`` (a browser never guesses a type: an uploaded image
  is never run as a page) and ``Referrer-Policy: no-referrer`` (a room URL, with its ``roomKey``, never
  leaves in a ``Referer``);
- HTML (the room page, status pages, the API docs): a ``Content-Security-Policy`` allowing only this
  server's scripts (:func:`html_policy`), with ``frame-ancestors`` from the ``HEREWITH_FRAME_ANCESTORS``
  setting (default ``*``: customers embed rooms in their own pages);
- JSON (the API): ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``.

A header the endpoint set itself is kept (the theme images send their own, stricter policy).

Usage::

    app.add_middleware(SecurityHeaders, frame_ancestors=["*"], public_url="https://meet.example.com")
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_API_CSP = (b"content-security-policy", API_POLICY.encode())
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_REFERRER = (b"referrer-policy", b"no-referrer")

# A CSP source expression as HEREWITH_FRAME_ANCESTORS may give it: *, 'self', 'none', a scheme (https:), or
# a host source ([scheme://]host[:port], host may start with *.) without a path. Nothing that could end the
# directive (;), start another policy (,) or quote something else.
_SOURCE = re.compile(
    r"^(\*|'self'|'none'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:(\d{1,5}|\*))?)$",
    re.IGNORECASE,
)
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def check_sources(sources: Sequence[str]) -> list[str]:
    """``sources`` as a valid CSP source list: at least one; each a source expression (see ``_SOURCE``);
    ``'none'`` only alone. Raises ValueError naming the first bad one."""
    values = [s.strip() for s in sources if s.strip()]
    if not values:
        raise ValueError("at least one source is needed ('none' to forbid embedding)")
    for value in values:
        if not _SOURCE.match(value):
            raise ValueError(f"{value!r} is not a CSP source expression (*, 'self', 'none', https:, "
                             "https://app.example.com, https://*.example.com)")
    if "'none'" in values and len(values) > 1:
        raise ValueError("'none' cannot be combined with other sources")
    return values


def websocket_origin(url: str) -> str | None:
    """The ``ws://`` or ``wss://`` origin of an ``http(s)`` URL (``https://h:8443/x`` -> ``wss://h:8443``)."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc or not _HOST.match(parts.netloc):
        return None
    return f"{scheme}://{parts.netloc}"


def html_policy(frame_ancestors: Sequence[str], connect: Sequence[str] = ()) -> str:
    """The Content-Security-Policy of the HTML pages.

    Scripts and styles from this server only (``style-src 'unsafe-inline'``: the room's theme colours are
    an inline ``<style>``); images also as ``data:``/``blob:``, media as ``blob:`` (local previews);
    connections to this server and to ``connect`` (the signaling WebSocket's ``ws(s)://`` origins, for
    browsers that do not count them as ``'self'``); nothing in ``<object>``, no ``<base>``; embedding by
    ``frame_ancestors``.
    """
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src " + " ".join(["'self'", *dict.fromkeys(connect)]),
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors " + " ".join(frame_ancestors),
    ])


class SecurityHeaders:
    """Pure ASGI middleware adding the headers in the module docstring to every HTTP response.

    ``frame_ancestors``: sources that may embed the HTML pages (validated by :func:`check_sources`);
    ``public_url``: the server's public base URL, whose WebSocket origin the pages may connect to (the
    request's own ``Host`` is allowed too, so a page reached by another name still signals).
    """

    def __init__(self, app: ASGIApp, *, frame_ancestors: Sequence[str] = ("*",), public_url: str = "") -> None:
        self.app = app
        self.frame_ancestors = check_sources(frame_ancestors)
        public = websocket_origin(public_url) if public_url else None
        self.public_ws = [public] if public else []
        self._policies: dict[str, str] = {}

    def _html_policy(self, scope: Scope) -> str:
        host = ""
        for name, value in scope.get("headers") or ():
            if name == b"host":
                host = value.decode("latin-1")
                break
        scheme = "wss" if scope.get("scheme") == "https" else "ws"
        own = f"{scheme}://{host}" if host and _HOST.match(host) else None
        policy = self._policies.get(own or "")
        if policy is None:
            policy = html_policy(self.frame_ancestors, [*self.public_ws, *([own] if own else [])])
            if len(self._policies) < 64:  # a few names reach one server; any Host header is possible
                self._policies[own or ""] = policy
        return policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # One pass over the raw headers (every API call comes through here): what is set already.
                raw = message.get("headers") or []
                media_type = b""
                nosniff = referrer = csp = False
                for name, value in raw:
                    if name == b"content-type":
                        media_type = value.split(b";", 1)[0].strip().lower()
                    elif name == b"x-content-type-options":
                        nosniff = True
                    elif name == b"referrer-policy":
                        referrer = True
                    elif name == b"content-security-policy":
                        csp = True
                extra = []
                if not nosniff:
                    extra.append(_NOSNIFF)
                if not referrer:
                    extra.append(_NO_REFERRER)
                if not csp:
                    if media_type == b"text/html":
                        extra.append((b"content-security-policy", self._html_policy(scope).encode("latin-1")))
                    elif media_type == b"application/json" or media_type.endswith(b"+json"):
                        extra.append(_API_CSP)
                message["headers"] = [*raw, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
