"""SDP, read as far as Herewith needs it: the session level and each media section (``m=`` line).

One parser for the two places that look inside an SDP: the viewer rule of the signaling relay ("a viewer
receives and never sends", CONTRACT.md "Room roles"; :mod:`herewith.signaling.live_room`) and the SFU proxy,
which tells Janus which publisher mids carry what (:mod:`herewith.media.sfu_proxy`). Grammar from RFC 8866
(SDP; its ``a=sendrecv``/``sendonly``/``recvonly``/``inactive`` and their session-level default), RFC 8843
(``a=bundle-only`` on a port-0 m-line is not a rejection) and RFC 8830 (``a=msid``).

Line endings: RFC 8866 asks for CRLF and allows LF; CR alone is accepted too, so an SDP reads the same with
any of the three. A text that mixes them is flagged (:attr:`SessionDescription.mixed_line_endings`): a
browser splits lines at LF only (Chromium's ``webrtc_sdp.cc``), so such a text may read differently there
than here.

Why hand-written rather than a package: the maintained Python SDP parsers are ``aiortc.sdp`` (a test-only
dependency here, and strict: it raises on input it does not know) and ``sdp-transform`` (a port of the
JavaScript library, one maintainer, last release 2024; it runs a regular-expression grammar of some forty
rules over every line and returns untyped dicts). Herewith needs six facts per m-line and must read hostile
input conservatively (see :meth:`MediaSection.may_send`), which a few dozen lines do exactly.

Usage::

    desc = parse_sdp(offer_sdp)
    for m in desc.media:
        m.kind, m.port, m.direction, m.mid     # "video", 9, "sendonly", "1"
    desc.may_send_media()                      # the viewer rule's question
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DIRECTIONS", "Direction", "MediaSection", "SessionDescription", "parse_sdp"]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: frozenset[str] = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
SENDING: frozenset[str] = frozenset({"sendrecv", "sendonly"})
NON_MEDIA_KINDS: frozenset[str] = frozenset({"application"})  # data channels (SCTP): no audio or video


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` line and the attributes under it.

    ``index`` is the m-line index (``sdpMLineIndex``, from 0); ``kind`` the media type as written (``audio``,
    ``video``, ``application``, ...); ``port`` an int, or None when it is not a number; ``protocol`` e.g.
    ``UDP/TLS/RTP/SAVPF``. ``direction`` is the effective direction: the section's own attribute (the last
    one when there are several), else the session-level one, else ``sendrecv`` (RFC 8866 section 6.7).
    ``own_directions`` lists every direction attribute written in the section itself, in order.
    ``mid`` is the ``a=mid`` value or None; ``has_msid`` / ``has_ssrc`` tell whether ``a=msid:`` /
    ``a=ssrc:`` lines are present (a track is attached); ``bundle_only`` whether ``a=bundle-only`` is.
    """

    index: int
    kind: str
    port: int | None
    protocol: str
    direction: Direction
    own_directions: tuple[str, ...]
    mid: str | None
    has_msid: bool
    has_ssrc: bool
    bundle_only: bool

    @property
    def rejected(self) -> bool:
        """Port 0 without ``a=bundle-only``: a rejected or stopped m-line, which carries nothing (RFC 8843)."""
        return self.port == 0 and not self.bundle_only

    @property
    def is_media(self) -> bool:
        """Audio, video or an unknown media type (anything but a data-channel ``application`` section)."""
        return self.kind not in NON_MEDIA_KINDS

    @property
    def sends(self) -> bool:
        """The effective direction is ``sendrecv`` or ``sendonly``."""
        return self.direction in SENDING

    @property
    def may_send(self) -> bool:
        """True unless this section certainly sends no media, read as strictly as a browser might.

        A section may send when it is a media section, not rejected, and either carries no direction
        attribute of its own (Chromium ignores session-level directions and reads the default
        ``sendrecv``) or any of its own direction attributes is ``sendrecv``/``sendonly`` (browsers differ
        on which of several wins). Tracks (``a=msid``/``a=ssrc``) do not matter: a sending direction
        alone lets the other side accept media.
        """
        if self.rejected or not self.is_media:
            return False
        if not self.own_directions:
            return True
        return any(d in SENDING for d in self.own_directions)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A parsed SDP: the session-level direction (None when absent), the media sections in order, and
    whether the text mixes line endings (CRLF, LF, CR alone)."""

    direction: Direction | None
    media: tuple[MediaSection, ...]
    mixed_line_endings: bool

    def may_send_media(self) -> bool:
        """True when any media section may send (:attr:`MediaSection.may_send`), or when the line endings
        are mixed (a browser splitting at LF only could read other lines than this parser did).

        This is the question of the viewer rule (CONTRACT.md "Room roles": viewers receive only)."""
        return self.mixed_line_endings or any(m.may_send for m in self.media)


def _attribute(value: str) -> tuple[str, str]:
    """``a=`` line value -> ``(name, rest)``: the name ends at ``:`` or a space, as Chromium reads it."""
    end = len(value)
    for sep in (":", " "):
        i = value.find(sep)
        if 0 <= i < end:
            end = i
    return value[:end], value[end + 1:]


def _direction_token(name: str, value: str) -> str | None:
    """The direction an ``a=`` line states: its name (:func:`_attribute`) when that is one of the four;
    a sending direction is also recognised in another case or with whitespace around it, as a lenient
    parser reads it (so it is never missed); None otherwise."""
    if name in DIRECTIONS:
        return name
    words = value.split(":", 1)[0].lower().split()
    return words[0] if words and words[0] in SENDING else None


class _Section:
    """A media section while its lines are read."""

    __slots__ = ("index", "kind", "port", "protocol", "own", "exact", "mid", "msid", "ssrc", "bundle_only")

    def __init__(self, index: int, m_value: str) -> None:
        parts = m_value.split(" ")
        port = parts[1].split("/", 1)[0] if len(parts) > 1 else ""  # "9" or "9/2" (port/number of ports)
        self.index = index
        self.kind = parts[0]
        self.port = int(port) if port.isascii() and port.isdigit() else None
        self.protocol = parts[2] if len(parts) > 2 else ""
        self.own: list[str] = []
        self.exact: str | None = None  # the last direction attribute written exactly
        self.mid: str | None = None
        self.msid = self.ssrc = self.bundle_only = False

    def attribute(self, value: str) -> None:
        name, rest = _attribute(value)
        token = _direction_token(name, value)
        if token is not None:
            self.own.append(token)
            if name in DIRECTIONS:
                self.exact = name
        elif name == "mid":
            self.mid = rest.strip()
        elif name == "msid":
            self.msid = True
        elif name == "ssrc":
            self.ssrc = True
        elif name == "bundle-only":
            self.bundle_only = True

    def build(self, session_direction: Direction | None) -> MediaSection:
        direction: Direction = self.exact or session_direction or "sendrecv"  # type: ignore[assignment]
        return MediaSection(
            index=self.index, kind=self.kind, port=self.port, protocol=self.protocol, direction=direction,
            own_directions=tuple(self.own), mid=self.mid, has_msid=self.msid, has_ssrc=self.ssrc,
            bundle_only=self.bundle_only,
        )


def parse_sdp(text: str) -> SessionDescription:
    """Parse ``text`` (an SDP offer or answer; any line endings). Never raises: lines that are not
    ``<letter>=<value>`` are skipped, and a text without ``m=`` lines has no media sections."""
    crlf = text.count("\r\n")
    endings = (crlf > 0) + (text.count("\r") > crlf) + (text.count("\n") > crlf)
    session_direction: Direction | None = None
    sections: list[_Section] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if len(line) < 2 or line[1] != "=":
            continue
        if line[0] == "m":
            sections.append(_Section(len(sections), line[2:]))
        elif line[0] == "a":
            if sections:
                sections[-1].attribute(line[2:])
            elif (name := _attribute(line[2:])[0]) in DIRECTIONS:
                session_direction = name  # type: ignore[assignment]
    return SessionDescription(
        direction=session_direction,
        media=tuple(s.build(session_direction) for s in sections),
        mixed_line_endings=endings > 1,
    )
