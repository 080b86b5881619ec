"""Request and response models of the recordings calls, named as in the contract.

Source: CONTRACT.md "Recordings" and ``whereby-openapi.json`` (``Recording``, ``/recordings`` paths).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

SORT_FIELDS = ("roomName", "startDate", "duration", "sizeInMegaBytes")
MAX_BULK_IDS = 1000


class RecordingOut(BaseModel):
    """The contract's ``Recording``.

    ``startDate``/``endDate``: UTC with milliseconds (``endDate`` null while it runs); ``sizeInMegaBytes``:
    the final file's size in megabytes of 10^6 bytes, 3 decimals (0 until it is ready); ``duration``: seconds
    with millisecond precision (null until ready); ``state``: starting | recording | processing | ready |
    failed; ``storageType``: whereby | s3; ``fileFormat``: mp4 | mkv; ``trigger``: manual | prompt | automatic
    | automatic-2nd-participant. The vendor's required fields come first.
    """

    recordingId: str
    roomSessionId: str | None
    roomName: str
    filename: str | None
    startDate: str
    endDate: str | None
    sizeInMegaBytes: float
    duration: float | None
    state: str
    meetingId: str
    storageType: str
    fileFormat: str
    trigger: str


class RecordingList(BaseModel):
    results: list[RecordingOut]
    cursor: str | None


class AccessLinkOut(BaseModel):
    """``accessLink``: a URL that downloads the file until ``expires`` (epoch milliseconds, UTC)."""

    accessLink: str
    expires: int


class BulkDeleteRequest(BaseModel):
    """Body of ``POST /v1/recordings/bulk-delete``: ``recordingIds``, at most 1000 ids."""

    model_config = ConfigDict(extra="ignore")

    recordingIds: list[Annotated[StrictStr, Field(max_length=64)]] = Field(max_length=MAX_BULK_IDS)
