"""The pure rules under the second vendor's options: the room policy (herewith.rooms.policy), participant
tokens (herewith.auth.room_keys) and the media check of SDP offers and SFU publishes
(herewith.signaling.live_room.sdp_media_violation), on real aiortc offers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from herewith.auth.room_keys import InvalidRoomKey, issue_participant_token, issue_room_key, verify_room_key
from herewith.metered.service import policy_from_options
from herewith.metered.schemas import RoomOptions
from herewith.rooms.policy import DEFAULT_POLICY, MediaGrants, RoomPolicy
from herewith.signaling.live_room import sdp_media_violation
from tests.metered.helpers import offer_sdp

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
KEY = "k" * 48


def test_policy_round_trips_and_maps_the_vendors_options() -> None:
    options = RoomOptions(privacy="private", enableRequestToJoin=True, notBeforeUnixSec=int(NOW.timestamp()),
                          expireUnixSec=int(NOW.timestamp()) + 60, maxParticipants=0, audioOnlyRoom=True,
                          ejectAfterElapsedTimeInSec=30, enableChat=True).stored()
    policy = policy_from_options(options)
    assert policy.private and policy.request_to_join and policy.audio_only and policy.chat
    assert policy.max_participants is None and policy.eject_after_seconds == 30  # 0 means "not set"
    assert RoomPolicy.from_json(policy.to_json()) == policy
    assert RoomPolicy.from_json(None) is DEFAULT_POLICY and DEFAULT_POLICY.is_default
    assert policy.join_refusal(NOW - timedelta(seconds=1))[0] == "not_yet"
    assert policy.join_refusal(NOW) is None
    assert policy.join_refusal(NOW + timedelta(seconds=60))[0] == "expired"


def test_media_grants_and_eject_timers() -> None:
    class Token:
        disable_audio, disable_video, disable_screen, eject_after_seconds = False, True, False, 10

    owner_only = RoomPolicy(owner_only_broadcast=True)
    assert owner_only.media_grants(is_host=False) == MediaGrants(False, False, False)
    assert owner_only.media_grants(is_host=True) == MediaGrants()
    assert RoomPolicy(audio_only=True).media_grants(True) == MediaGrants(True, False, False)
    assert RoomPolicy(screen_share=False).media_grants(False, Token()) == MediaGrants(True, False, False)
    assert RoomPolicy(eject_after_seconds=60).eject_after(Token()) == 10
    assert RoomPolicy(eject_after_seconds=5).eject_after(Token()) == 5
    assert RoomPolicy().eject_after() is None


def test_participant_tokens() -> None:
    room = issue_participant_token(KEY, "org-a", room_name="/r1", admin=False, name="Bo", join_video_on=False)
    claims = verify_room_key(KEY, room, "/r1", NOW, "org-a")
    assert (claims.role, claims.name, claims.join_video_on, claims.expires_at) == ("member", "Bo", False, None)
    with pytest.raises(InvalidRoomKey):
        verify_room_key(KEY, room, "/r2", NOW, "org-a")
    with pytest.raises(InvalidRoomKey):
        verify_room_key(KEY, room, "/r1", NOW, "org-b")  # a room of the same name elsewhere: not this token's
    everywhere = issue_participant_token(KEY, "org-a", room_name=None, admin=True)
    assert verify_room_key(KEY, everywhere, "/any", NOW, "org-a").role == "host"
    with pytest.raises(InvalidRoomKey):
        verify_room_key(KEY, everywhere, "/any", NOW, "org-b")
    window = issue_participant_token(KEY, "org-a", room_name="/r1", admin=False, not_before=int(NOW.timestamp()),
                                     expires_at=int(NOW.timestamp()) + 10)
    verify_room_key(KEY, window, "/r1", NOW, "org-a")
    for at in (NOW - timedelta(seconds=1), NOW + timedelta(seconds=11)):
        with pytest.raises(InvalidRoomKey):
            verify_room_key(KEY, window, "/r1", at, "org-a")
    # the Whereby API's room keys still verify as before (no organization claim: valid in the room only)
    host = issue_room_key(KEY, "/r1", "host", NOW)
    assert verify_room_key(KEY, host, "/r1", NOW, "org-a").organization_id is None


async def test_sdp_media_violation_on_aiortc_offers() -> None:
    camera_and_mic = await offer_sdp(audio=True, video=1)
    two_videos = await offer_sdp(audio=True, video=2)
    listen_only = await offer_sdp(audio=False, recv_video=True)
    everything = MediaGrants()
    assert sdp_media_violation(two_videos, everything) is None
    assert sdp_media_violation(listen_only, MediaGrants(False, False, False)) is None
    assert "audio" in sdp_media_violation(camera_and_mic, MediaGrants(False, True, True))
    assert "video" in sdp_media_violation(camera_and_mic, MediaGrants(True, False, False))
    assert sdp_media_violation(camera_and_mic, MediaGrants(True, False, True)) is None  # the one video may be a screen
    assert "Screen" in sdp_media_violation(two_videos, MediaGrants(True, True, False))
    # an SFU publish says which mid is the screen
    mids = [line.split(":")[1] for line in two_videos.splitlines() if line.startswith("a=mid:")]
    screen = {mids[2]: "screen"}
    assert "Screen" in sdp_media_violation(two_videos, MediaGrants(True, True, False), screen)
    assert "only share your screen" in sdp_media_violation(two_videos, MediaGrants(True, False, True), screen)
    assert sdp_media_violation(two_videos, MediaGrants(True, True, True), screen) is None
