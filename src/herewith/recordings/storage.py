"""Where finished recordings live: the data directory (``whereby`` storage) or the customer's S3 bucket.

- :class:`LocalStorage`: files under ``<data_dir>/recordings/``; a key is a path relative to it
  (``<recordingId>/<filename>``). Downloads go through Herewith's signed, expiring links
  (:mod:`herewith.recordings.service`, ``/recordings/files/...``).
- :class:`S3Storage`: a meeting's ``recording.destination`` with ``provider: s3`` (``bucket``, optionally
  ``bucket/prefix``; ``accessKeyId``, ``accessKeySecret``; ``region``; ``endpoint`` for S3-compatible stores).
  Uploads are multipart (boto3's transfer manager, parts of ``recording_s3_part_bytes``); downloads are
  presigned GET URLs. Every boto3 call blocks, so each runs in a worker thread (``asyncio.to_thread``), never
  on the event loop.

Credentials are only ever handed to boto3: never logged, never part of an error message, never returned by
an API call (``repr`` of :class:`S3Destination` hides the secret).

Usage::

    store = LocalStorage(settings.data_dir / "recordings")
    path = store.path(key)
    s3 = S3Storage(S3Destination.from_options(meeting.recording["destination"]), part_bytes=8 << 20)
    await s3.upload(local_path, key, "video/mp4")
    url = await s3.presigned_url(key, valid_for_seconds=3600)
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTENT_TYPES = {"mp4": "video/mp4", "mkv": "video/x-matroska", "webm": "audio/webm"}


class StorageError(Exception):
    """A storage operation failed; the message never carries credentials."""


async def check_endpoint(endpoint: str | None, policy: Any) -> None:
    """Refuse an S3 ``endpoint`` (None: AWS, allowed) that the server must not connect to: the webhook target
    policy (:class:`herewith.webhooks.targets.TargetPolicy`: never link-local, cloud metadata, reserved or
    the server itself; loopback and private networks only with ``webhook_allow_private_targets``), on the
    URL and on every address its host resolves to now. boto3 resolves the name again when it connects, so a
    name that re-points between the two is not caught here (the webhook client connects to checked
    addresses; boto3 cannot). Raises :class:`StorageError`."""
    if endpoint is None:
        return
    from urllib.parse import urlsplit

    from herewith.webhooks.targets import TargetRefused, resolve

    try:
        policy.check_url(endpoint)
        parts = urlsplit(endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for ip in await resolve(parts.hostname or "", port):
            policy.check_address(ip, port)
    except TargetRefused as exc:
        raise StorageError(f"the s3 endpoint is refused: {exc}") from None
    except OSError:
        raise StorageError("the s3 endpoint's host does not resolve") from None


class LocalStorage:
    """Files under ``root`` (``<data_dir>/recordings``). Keys are relative POSIX paths without ``..``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The file of ``key``. Raises :class:`StorageError` for a key that leaves ``root``."""
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise StorageError("invalid storage key")
        return self.root.joinpath(*parts)

    def recording_dir(self, recording_id: str) -> Path:
        """Where a recording's ingested streams and (for local storage) its final files are."""
        return self.path(recording_id)

    async def delete_recording(self, recording_id: str) -> None:
        """Remove the recording's directory and everything in it (idempotent), in a worker thread."""
        await asyncio.to_thread(shutil.rmtree, self.recording_dir(recording_id), True)


@dataclass(frozen=True)
class S3Destination:
    """An S3 (or S3-compatible) target: ``bucket``, key ``prefix`` ("" or ending with ``/``), credentials,
    ``region`` and ``endpoint`` (None: AWS). ``repr`` shows neither credential."""

    bucket: str
    prefix: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    region: str | None = None
    endpoint: str | None = None

    @classmethod
    def from_options(cls, destination: dict[str, Any]) -> S3Destination:
        """From a meeting's stored ``recording.destination`` (provider ``s3``). ``bucket`` may carry a folder
        (``my-bucket/recordings``: keys go under ``recordings/``, per the vendor's spec). Raises
        :class:`StorageError` when a field is missing (role-based authentication is not supported)."""
        bucket_path = (destination.get("bucket") or "").strip("/")
        key_id, secret = destination.get("accessKeyId"), destination.get("accessKeySecret")
        if not bucket_path or not key_id or not secret:
            raise StorageError("the s3 destination needs bucket, accessKeyId and accessKeySecret")
        bucket, _, prefix = bucket_path.partition("/")
        return cls(bucket=bucket, prefix=(prefix.strip("/") + "/") if prefix.strip("/") else "",
                   access_key_id=key_id, secret_access_key=secret, region=destination.get("region") or None,
                   endpoint=destination.get("endpoint") or None)


class S3Storage:
    """Upload, presign and delete objects in one :class:`S3Destination`. Every method runs boto3 in a thread.
    With a ``policy`` (:func:`check_endpoint`), a custom endpoint is checked before the first request."""

    def __init__(self, destination: S3Destination, part_bytes: int = 8 * 1024 * 1024, policy: Any = None) -> None:
        self.destination = destination
        self.part_bytes = part_bytes
        self.policy = policy
        self._client: Any = None
        self._checked = policy is None

    async def _check(self) -> None:
        if not self._checked:
            await check_endpoint(self.destination.endpoint, self.policy)
            self._checked = True

    def key(self, relative: str) -> str:
        """The object key of ``relative`` (``<recordingId>/<filename>``) under the destination's prefix."""
        return self.destination.prefix + relative

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            d = self.destination
            self._client = boto3.session.Session().client(
                "s3", aws_access_key_id=d.access_key_id, aws_secret_access_key=d.secret_access_key,
                region_name=d.region or "us-east-1", endpoint_url=d.endpoint,
                config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"},
                              connect_timeout=10, read_timeout=60, s3={"addressing_style": "path"} if d.endpoint else {}),
            )
        return self._client

    async def upload(self, path: Path, key: str, content_type: str) -> None:
        """Upload ``path`` to ``key`` (the full object key): multipart above one part. Raises StorageError."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=self.part_bytes, multipart_chunksize=self.part_bytes,
                                max_concurrency=4, use_threads=True)

        await self._check()

        def go() -> None:
            self._s3().upload_file(str(path), self.destination.bucket, key,
                                   ExtraArgs={"ContentType": content_type}, Config=config)

        try:
            await asyncio.to_thread(go)
        except Exception as exc:  # noqa: BLE001 - boto3 raises many kinds; none may leak credentials
            raise StorageError(f"upload to s3 bucket {self.destination.bucket!r} failed: {type(exc).__name__}") from None

    async def download(self, key: str, path: Path) -> None:
        """Download ``key`` (the full object key) into ``path`` (a transcription reads a participant's audio
        track this way). Raises StorageError."""
        await self._check()

        def go() -> None:
            self._s3().download_file(self.destination.bucket, key, str(path))

        try:
            await asyncio.to_thread(go)
        except Exception as exc:  # noqa: BLE001 - boto3 raises many kinds; none may leak credentials
            raise StorageError(f"download from s3 bucket {self.destination.bucket!r} failed: {type(exc).__name__}") from None

    async def presigned_url(self, key: str, valid_for_seconds: int, filename: str | None = None) -> str:
        """A presigned GET URL for ``key`` valid ``valid_for_seconds`` (SigV4: at most 7 days)."""
        params: dict[str, Any] = {"Bucket": self.destination.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'

        await self._check()

        def go() -> str:
            return self._s3().generate_presigned_url("get_object", Params=params, ExpiresIn=valid_for_seconds)

        return await asyncio.to_thread(go)

    async def delete(self, keys: list[str]) -> None:
        """Delete objects (idempotent: missing keys are fine). Raises StorageError."""
        if not keys:
            return
        await self._check()

        def go() -> None:
            self._s3().delete_objects(Bucket=self.destination.bucket,
                                      Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})

        try:
            await asyncio.to_thread(go)
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"delete in s3 bucket {self.destination.bucket!r} failed: {type(exc).__name__}") from None
