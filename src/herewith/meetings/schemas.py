"""Request and response models of the meetings calls, named as in the contract.

Source: CONTRACT.md "Meetings" and ``whereby-openapi.json`` ``POST /meetings`` (the spec's
``roomNamePrefix`` pattern omits ``-``, which the docs use; we accept it, per "Known defects").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictStr, field_validator, model_serializer, model_validator

from herewith.kit.time import parse_datetime

DATE_OUT_OF_RANGE = "must be an ISO-8601 date-time between the years 1 and 9999 (UTC)"


def parse_request_datetime(value: object) -> datetime:
    """:func:`~herewith.kit.time.parse_datetime`, with a date that leaves Python's calendar once moved to UTC
    (``9999-12-31T23:59:59-01:00``, ``0001-01-01T00:00:00+01:00``) refused like any other bad date: ValueError."""
    try:
        return parse_datetime(value)
    except OverflowError:
        raise ValueError(DATE_OUT_OF_RANGE) from None


UtcDateTime = Annotated[datetime, BeforeValidator(parse_request_datetime)]
ROOM_NAME_PREFIX_RE = re.compile(r"^[a-z0-9-]{0,39}$")
TRANSCRIPTION_LANGUAGES = (
    "ca zh zh-TW cs da nl en en-US en-GB fi fr de de-CH el hi id it ja ko lv ms no pl pt pt-BR ro ru sk es sv th "
    "uk vi"
).split()
MeetingField = Literal["hostRoomUrl", "viewerRoomUrl"]


class _Body(BaseModel):
    # Unknown keys are ignored, as the vendor's API does, so clients that send extra fields keep working.
    model_config = ConfigDict(extra="ignore")


class StorageDestination(_Body):
    """``recording.destination`` / ``liveTranscription.destination``: where files go."""

    provider: Literal["s3", "whereby"]
    authenticationType: Literal["accessKey", "roleBased"] | None = None
    bucket: StrictStr | None = None
    accessKeyId: StrictStr | None = None
    accessKeySecret: StrictStr | None = None
    region: StrictStr | None = None
    endpoint: StrictStr | None = None  # an S3-compatible store's URL (https://minio.example:9000); None: AWS
    fileFormat: Literal["mkv", "mp4"] | None = None
    oidcRoleArn: StrictStr | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/?#@]+(/[^\s?#]*)?$", value):
            raise ValueError("must be an http:// or https:// URL without credentials")
        return value

    @model_validator(mode="after")
    def _s3_credentials(self) -> StorageDestination:
        if self.provider != "s3":
            return self
        if self.authenticationType == "roleBased":
            missing = [f for f in ("bucket", "oidcRoleArn") if not getattr(self, f)]
        else:
            missing = [f for f in ("bucket", "accessKeyId", "accessKeySecret") if not getattr(self, f)]
        if missing:
            raise ValueError(f"provider s3 requires {', '.join(missing)}")
        return self


class RecordingOptions(_Body):
    """``recording``: ``type`` none|local|cloud, ``destination`` (or null), ``startTrigger`` (or null)."""

    type: Literal["none", "local", "cloud"]
    destination: StorageDestination | None
    startTrigger: Literal["none", "prompt", "automatic", "automatic-2nd-participant"] | None


class LiveTranscriptionOptions(_Body):
    """``liveTranscription``: ``destination`` (or null), ``startTrigger`` (or null), ``language``, ``liveCaptions``."""

    destination: StorageDestination | None
    startTrigger: Literal["none", "manual", "automatic", "automatic-2nd-participant"] | None
    language: StrictStr | None = None
    liveCaptions: StrictBool | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        # The vendor spec's enum values carry stray commas ("en,"): accept both spellings, store the clean one.
        if value is None:
            return None
        clean = value.rstrip(",")
        if clean not in TRANSCRIPTION_LANGUAGES:
            raise ValueError(f"must be one of {', '.join(TRANSCRIPTION_LANGUAGES)}")
        return clean


class StreamingDestination(_Body):
    url: StrictStr

    @field_validator("url")
    @classmethod
    def _rtmp(cls, value: str) -> str:
        if not re.match(r"^rtmps?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an rtmp:// or rtmps:// URI")
        return value


class StreamingOptions(_Body):
    """``streaming``: ``destination.url`` (RTMP URI) and ``startTrigger`` none|prompt|automatic (or null)."""

    destination: StreamingDestination
    startTrigger: Literal["none", "prompt", "automatic"] | None


class CreateMeetingRequest(_Body):
    """Body of ``POST /v1/meetings``. ``endDate`` is required, may not be in the past and may be at most 100
    years ahead (both checked by the service, which knows the time: ``service.create_meeting``)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"endDate": "2099-02-18T14:23:00.000Z"},
        {"endDate": "2099-02-18T09:23:00-05:00", "roomNamePrefix": "team", "roomNamePattern": "human-short",
         "roomMode": "group", "isLocked": True, "fields": ["hostRoomUrl", "viewerRoomUrl"]},
    ]})

    endDate: UtcDateTime
    startDate: Any = None  # deprecated by the vendor: accepted and ignored
    isLocked: StrictBool | None = None
    roomMode: Literal["normal", "group"] = "normal"
    roomNamePrefix: StrictStr | None = None
    roomNamePattern: Literal["uuid", "human-short"] = "uuid"
    templateType: Literal["viewerMode"] | None = None
    fields: list[MeetingField] | None = None
    recording: RecordingOptions | None = None
    liveTranscription: LiveTranscriptionOptions | None = None
    streaming: StreamingOptions | None = None

    @field_validator("roomNamePrefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = re.sub(r"\s+", "", value).lower()
        if not ROOM_NAME_PREFIX_RE.match(normalised):
            raise ValueError("must be at most 39 characters of a-z, 0-9 and - (after lower-casing and removing spaces)")
        return normalised or None


class MeetingOut(BaseModel):
    """The contract's ``Meeting``: dates in UTC with milliseconds; host/viewer URLs only when asked for."""

    meetingId: str
    roomName: str
    roomUrl: str
    startDate: str
    endDate: str
    hostRoomUrl: str | None = None
    viewerRoomUrl: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unrequested_urls(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in ("hostRoomUrl", "viewerRoomUrl"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class MeetingList(BaseModel):
    results: list[MeetingOut]
    cursor: str | None
