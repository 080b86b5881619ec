"""Recordings to the meeting's own S3 bucket, against moto's S3-compatible server on 127.0.0.1: the file is
uploaded (multipart above one part), the local copy goes, the access link is an S3 presigned URL that
downloads it, deletion removes the object, and the bucket's credentials appear in no response and no log
line (CONTRACT.md "Meetings" recording.destination, "Recordings")."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest

from herewith.recordings.storage import S3Destination, S3Storage
from tests.recordings.conftest import WEBM_SECONDS
from tests.recordings.helpers import duration, wait_recording
from tests.signaling.helpers import Client, create_meeting, room_key
from tests.webhooks.helpers import await_for

KEY_ID = "AKIAHEREWITHTEST0001"
SECRET = "s3cr3t-Th4t-Must-N3ver-Leak-0123456789"


def _s3(endpoint: str):  # noqa: ANN202
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


async def _bucket(endpoint: str, name: str) -> None:
    await asyncio.to_thread(lambda: _s3(endpoint).create_bucket(Bucket=name))


@pytest.mark.timeout(120)
async def test_s3_destination_upload_presigned_link_and_delete(server, client, launcher, webm, s3_server, tmp_path,
                                                              capfd):
    bucket = f"rec-{os.urandom(4).hex()}"
    await _bucket(s3_server, bucket)
    destination = {"provider": "s3", "bucket": f"{bucket}/calls", "accessKeyId": KEY_ID, "accessKeySecret": SECRET,
                   "region": "us-east-1", "endpoint": s3_server, "fileFormat": "mp4"}
    meeting = await create_meeting(client, recording={"type": "cloud", "destination": destination,
                                                      "startTrigger": "none"})
    for text in ((await client.get(f"/meetings/{meeting['meetingId']}", params={"fields": "hostRoomUrl"})).text,
                 (await client.get("/meetings")).text, str(meeting)):
        assert SECRET not in text and KEY_ID not in text
    async with Client(server.ws_url, meeting["roomName"]) as host:
        joined = await host.join(roomKey=room_key(meeting["hostRoomUrl"]))
        assert joined["recordingOptions"] == {"type": "cloud", "startTrigger": "none"}  # no destination
        await host.send({"type": "recording_start"})
        recording_id = (await host.expect("recording", timeout=10, state="recording"))["recordingId"]
        await await_for(lambda: launcher.sent.get(recording_id) == len(webm), timeout=30)
        await host.send({"type": "recording_stop"})
        await host.expect("recording", timeout=30, state="stopped")
    ready = await wait_recording(client, recording_id)
    assert ready["storageType"] == "s3" and abs(ready["duration"] - WEBM_SECONDS) <= 2
    key = f"calls/{recording_id}/{ready['filename']}"
    head = await asyncio.to_thread(lambda: _s3(s3_server).head_object(Bucket=bucket, Key=key))
    assert head["ContentType"] == "video/mp4" and abs(head["ContentLength"] - ready["sizeInMegaBytes"] * 1e6) <= 500
    assert not (server.settings.data_dir / "recordings" / recording_id).exists()  # the bucket holds it now

    link = (await client.get(f"/recordings/{recording_id}/access-link", params={"validForSeconds": 120})).json()
    url = urlsplit(link["accessLink"])
    assert link["accessLink"].startswith(f"{s3_server}/{bucket}/{key}?")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["120"] and "X-Amz-Signature" in query and SECRET not in link["accessLink"]
    async with httpx.AsyncClient(timeout=30) as http:
        got = await http.get(link["accessLink"])
        assert got.status_code == 200
        unsigned = await http.get(link["accessLink"].split("?")[0])
        assert unsigned.status_code == 403  # the bucket is private: only the signature opens it
    path = tmp_path / "s3.mp4"
    path.write_bytes(got.content)
    assert abs(duration(path) - WEBM_SECONDS) <= 2

    assert (await client.delete(f"/recordings/{recording_id}")).status_code == 204

    def gone() -> bool:
        listed = _s3(s3_server).list_objects_v2(Bucket=bucket, Prefix=f"calls/{recording_id}/")
        return listed.get("KeyCount", 0) == 0

    await await_for(gone, timeout=15)
    logged = "".join(capfd.readouterr())
    assert SECRET not in logged and KEY_ID not in logged


async def test_large_files_go_up_in_parts(s3_server, tmp_path):
    bucket = f"parts-{os.urandom(4).hex()}"
    await _bucket(s3_server, bucket)
    store = S3Storage(S3Destination.from_options({"bucket": bucket, "accessKeyId": KEY_ID, "accessKeySecret": SECRET,
                                                  "endpoint": s3_server}), part_bytes=5 * 1024 * 1024)
    assert SECRET not in repr(store.destination) and KEY_ID not in repr(store.destination)
    path = Path(tmp_path / "big.bin")
    data = os.urandom(11 * 1024 * 1024)
    path.write_bytes(data)
    await store.upload(path, store.key("x/big.bin"), "application/octet-stream")
    head = await asyncio.to_thread(lambda: _s3(s3_server).head_object(Bucket=bucket, Key="x/big.bin"))
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    url = await store.presigned_url("x/big.bin", 60)
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(url, headers={"Range": "bytes=0-9"})).content == data[:10]


async def test_s3_endpoints_are_held_to_the_target_policy(tmp_path):
    from herewith.config import Settings
    from herewith.recordings.storage import StorageError, check_endpoint
    from herewith.webhooks.targets import TargetPolicy

    strict = TargetPolicy.from_settings(Settings(data_dir=tmp_path, webhook_allow_private_targets=False))
    lenient = TargetPolicy.from_settings(Settings(data_dir=tmp_path, webhook_allow_private_targets=True, port=8080))
    await check_endpoint(None, strict)  # AWS itself
    await check_endpoint("http://127.0.0.1:9000", lenient)
    for endpoint, policy in [("http://127.0.0.1:9000", strict), ("http://localhost:9000", strict),
                             ("http://10.1.2.3", strict), ("http://169.254.169.254/", lenient),
                             ("http://2852039166/", lenient), ("http://127.0.0.1:8080", lenient),
                             ("ftp://s3.example", lenient), ("http://user:pw@s3.example", lenient)]:
        with pytest.raises(StorageError):
            await check_endpoint(endpoint, policy)
    store = S3Storage(S3Destination.from_options({"bucket": "b", "accessKeyId": KEY_ID, "accessKeySecret": SECRET,
                                                  "endpoint": "http://169.254.169.254"}), policy=lenient)
    with pytest.raises(StorageError) as refused:
        await store.presigned_url("k", 60)
    assert "refused" in str(refused.value) and SECRET not in str(refused.value)
