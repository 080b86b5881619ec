"""herewith.kit.sdp: sessions and m-lines, directions with the session default, and any line endings."""

from __future__ import annotations

import pytest

from herewith.kit.sdp import parse_sdp

# A Chromium offer with audio, camera, a stopped screen m-line and a data channel (trimmed).
OFFER = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 3\r\na=msid-semantic: WMS s1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=msid:s1 a1\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=ssrc:11 cname:x\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=msid:s1 v1\r\n"
    "m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=inactive\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\n"
)


@pytest.mark.parametrize("ending", ["\r\n", "\n", "\r"])
def test_sections_read_the_same_with_any_line_ending(ending: str) -> None:
    desc = parse_sdp(OFFER.replace("\r\n", ending))
    assert not desc.mixed_line_endings and desc.direction is None
    got = [(m.index, m.kind, m.port, m.protocol, m.direction, m.mid, m.has_msid, m.has_ssrc, m.rejected)
           for m in desc.media]
    assert got == [
        (0, "audio", 9, "UDP/TLS/RTP/SAVPF", "sendrecv", "0", True, True, False),
        (1, "video", 9, "UDP/TLS/RTP/SAVPF", "sendonly", "1", True, False, False),
        (2, "video", 0, "UDP/TLS/RTP/SAVPF", "inactive", "2", False, False, True),
        (3, "application", 9, "UDP/DTLS/SCTP", "sendrecv", "3", False, False, False),
    ]
    assert [m.may_send for m in desc.media] == [True, True, False, False]


def test_session_level_direction_is_the_default() -> None:
    desc = parse_sdp("v=0\r\na=recvonly\r\nm=audio 9 RTP/AVP 0\r\nm=video 9 RTP/AVP 96\r\na=sendonly\r\n")
    assert desc.direction == "recvonly"
    assert [m.direction for m in desc.media] == ["recvonly", "sendonly"]
    # the viewer rule does not trust the session-level default (Chromium reads sendrecv there)
    assert desc.media[0].may_send and desc.media[0].own_directions == ()


def test_no_direction_at_all_is_sendrecv() -> None:
    assert parse_sdp("v=0\nm=audio 9 RTP/AVP 0\n").media[0].direction == "sendrecv"


def test_mixed_line_endings_are_flagged() -> None:
    assert parse_sdp("v=0\r\nm=audio 9 RTP/AVP 0\na=recvonly\r\n").mixed_line_endings
    assert parse_sdp("v=0\rm=audio 9 RTP/AVP 0\na=recvonly\n").mixed_line_endings
    assert parse_sdp("v=0\r\nm=audio 9 RTP/AVP 0\r\na=x\ra=recvonly\r\n").may_send_media()


def test_port_forms_and_bundle_only() -> None:
    media = parse_sdp("v=0\r\nm=audio 9/2 RTP/AVP 0\r\nm=video x RTP/AVP 96\r\nm=video 0 RTP/AVP 96\r\n"
                      "a=bundle-only\r\na=recvonly\r\nm=audio\r\n").media
    assert [m.port for m in media] == [9, None, 0, None]
    assert media[2].bundle_only and not media[2].rejected
    assert media[3].kind == "audio" and media[3].protocol == ""


def test_direction_spellings() -> None:
    def own(line: str) -> tuple[str, ...]:
        return parse_sdp(f"v=0\r\nm=audio 9 RTP/AVP 0\r\n{line}\r\n").media[0].own_directions

    assert own("a=recvonly") == ("recvonly",)
    assert own("a=recvonly extra") == ("recvonly",)  # the name ends at a space or a colon
    assert own("a=recvonly\t") == ()  # not a direction to a browser: the default (sendrecv) applies
    assert own("a=SendRecv") == ("sendrecv",)  # a sending direction is recognised however it is spelled
    assert own("a= sendonly") == ("sendonly",)
    assert own("a=INACTIVE") == ()


def test_text_that_is_not_sdp() -> None:
    for text in ("", "garbage", "\r\n\r\n", "=m=audio 9", "a=sendrecv"):
        assert parse_sdp(text).media == ()
    assert parse_sdp("a=sendonly\r\n").direction == "sendonly"
    # an m-line of no known kind still counts as media (read conservatively)
    (odd,) = parse_sdp("m=").media
    assert odd.kind == "" and odd.port is None and odd.may_send
