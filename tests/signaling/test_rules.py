"""Pure rules of the signaling layer: the viewer SDP check and the TURN REST-API credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone

from herewith.config import Settings
from herewith.rooms.service import ice_servers, turn_credentials
from herewith.signaling.live_room import sdp_sends_media

HEAD = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def section(kind: str, direction: str | None, track: bool, port: str = "9") -> str:
    lines = [f"m={kind} {port} UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0"]
    if direction:
        lines.append(f"a={direction}")
    if track:
        lines.append("a=msid:s1 t1")
    return "\r\n".join(lines) + "\r\n"


def test_sdp_sends_media() -> None:
    assert sdp_sends_media(HEAD + section("video", "sendrecv", True))
    assert sdp_sends_media(HEAD + section("audio", "sendonly", True))
    assert sdp_sends_media(HEAD + section("audio", None, True))  # sendrecv is the default direction
    assert sdp_sends_media(HEAD + section("audio", "recvonly", False) + section("video", "sendonly", True))
    assert not sdp_sends_media(HEAD + section("audio", "recvonly", False) + section("video", "recvonly", False))
    assert not sdp_sends_media(HEAD + section("video", "inactive", True))
    assert not sdp_sends_media(HEAD + section("video", "sendrecv", True, port="0"))  # rejected m-line
    assert not sdp_sends_media(HEAD + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sendrecv\r\na=msid:x y\r\n")
    assert sdp_sends_media((HEAD + section("video", "sendrecv", True)).replace("\r\n", "\n"))
    assert not sdp_sends_media("garbage")


def test_sdp_sends_media_whatever_the_tracks_and_line_endings() -> None:
    """A sending direction is enough: the other side then accepts media, with or without a=msid/a=ssrc."""
    assert sdp_sends_media(HEAD + section("video", "sendrecv", False))
    assert sdp_sends_media(HEAD + section("audio", "sendonly", False))
    assert sdp_sends_media(HEAD + section("audio", None, False))  # no direction: sendrecv
    for ending in ("\n", "\r"):  # LF only, CR only
        assert sdp_sends_media((HEAD + section("video", "sendrecv", False)).replace("\r\n", ending))
        assert not sdp_sends_media((HEAD + section("video", "recvonly", False)).replace("\r\n", ending))
    # a session-level recvonly does not cover an m-line without its own direction (Chromium ignores it)
    assert sdp_sends_media(HEAD + "a=recvonly\r\n" + section("audio", None, False))
    # mixed line endings: a browser splitting at LF only would read "a=x\ra=recvonly" as one unknown line
    assert sdp_sends_media(HEAD + section("audio", None, False).replace("a=mid:0\r\n", "a=mid:0\r\na=x\ra=recvonly\r\n"))
    # several directions in one m-line: any sending one counts; so does a sending one in another spelling
    assert sdp_sends_media(HEAD + section("audio", "sendrecv", False) + "a=recvonly\r\n")
    assert sdp_sends_media(HEAD + section("audio", "recvonly", False) + "a=SENDONLY\r\n")
    # port 0 with a=bundle-only is not a rejection (RFC 8843)
    assert sdp_sends_media(HEAD + section("video", "sendrecv", False, port="0") + "a=bundle-only\r\n")


def test_turn_credentials_rest_api_scheme() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    username, password = turn_credentials("s3cret", 3600, now, "p1")
    assert username == f"{int(now.timestamp()) + 3600}:p1"
    assert password == base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()


def test_ice_servers_default_none_and_from_settings(tmp_path) -> None:  # noqa: ANN001
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert ice_servers(Settings(data_dir=tmp_path), now) == []
    s = Settings(data_dir=tmp_path, stun_urls="stun:a:3478, stun:b:3478", turn_urls="turns:t:5349")
    assert ice_servers(s, now) == [{"urls": ["stun:a:3478", "stun:b:3478"]}, {"urls": ["turns:t:5349"]}]
