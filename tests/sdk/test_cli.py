"""``herewith meetings`` and ``herewith recordings`` (the CLI on the SDK) with ``HEREWITH_BASE_URL`` and
``HEREWITH_API_KEY`` against a real server. Most commands run in this process through typer's runner (a child
process costs seconds of imports on a loaded machine); the download runs as a child process, as a user runs
it, with its stderr on a pseudo-terminal so that the progress bar draws. The API is the same on both databases (tests/sdk/test_client.py runs on both): SQLite only here."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from herewith.cli import app

from tests.recordings.helpers import seed_recording

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"])


def _env(server, key: str) -> dict[str, str]:
    return {"HEREWITH_BASE_URL": server.base_url, "HEREWITH_API_KEY": key}


def herewith(server, key: str, *args: str):  # noqa: ANN201 - click's Result: exit_code, stdout, stderr
    result = CliRunner().invoke(app, list(args), env=_env(server, key))
    result.returncode = result.exit_code
    return result


def herewith_process(server, key: str, *args: str, tty_stderr: bool = False) -> subprocess.CompletedProcess:
    """``python -m herewith ARGS`` in a child process; with ``tty_stderr`` its stderr is a pseudo-terminal
    (read back into ``.stderr``), as in a user's shell."""
    env = {**os.environ, **_env(server, key)}
    command = [sys.executable, "-m", "herewith", *args]
    if not tty_stderr:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    master, slave = pty.openpty()
    deadline = time.monotonic() + 120
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise TimeoutError(f"{command} still running after 120 s")
            if not select.select([master], [], [], min(left, 1.0))[0]:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return subprocess.CompletedProcess(command, proc.returncode, out, b"".join(chunks).decode(errors="replace"))


def test_meetings_create_list_get_delete(server, org):
    made = []
    for extra in ([], ["--host-url", "--prefix", "cli"], ["--room-mode", "group", "--json"]):
        run = herewith(server, org.api_key, "meetings", "create", "--end-date", "2099-02-18T09:23:00-05:00", *extra)
        assert run.returncode == 0, run.stderr
        made.append(run.stdout.strip())
    plain = made[0].split("\t")
    assert len(plain) == 4 and plain[1].startswith("/") and plain[2] == "2099-02-18T14:23:00Z"
    with_host = made[1].split("\t")
    assert with_host[1].startswith("/cli-") and "roomKey=" in with_host[4]
    as_json = json.loads(made[2])
    assert as_json["endDate"] == "2099-02-18T14:23:00Z" and as_json["roomUrl"].endswith(as_json["roomName"])
    ids = [plain[0], with_host[0], as_json["meetingId"]]

    listed = herewith(server, org.api_key, "meetings", "list", "--page-size", "2")  # two requests, one cursor
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ids
    only_cli = herewith(server, org.api_key, "meetings", "list", "--prefix", "/cli-", "--json").stdout.splitlines()
    assert [json.loads(line)["meetingId"] for line in only_cli] == [ids[1]]
    got = herewith(server, org.api_key, "meetings", "get", ids[0]).stdout.split("\t")
    assert got[0] == ids[0] and len(got) == 6  # with host and viewer URLs

    deleted = herewith(server, org.api_key, "meetings", "delete", *ids)
    assert deleted.returncode == 0 and deleted.stdout.splitlines() == [f"deleted {i}" for i in ids]
    assert herewith(server, org.api_key, "meetings", "list").stdout == ""
    missing = herewith(server, org.api_key, "meetings", "get", ids[0])
    assert missing.returncode == 1 and "404: The requested resource doesn't exist" in missing.stderr
    past = herewith(server, org.api_key, "meetings", "create", "--end-date", "2001-01-01T00:00:00Z")
    assert past.returncode == 1 and "endDate" in past.stderr and "Traceback" not in past.stderr
    stranger = herewith(server, "hw_wrong", "meetings", "list")
    assert stranger.returncode == 1 and "Access token is missing or invalid" in stranger.stderr


async def test_recordings_list_and_download(server, org, tmp_path):
    content = os.urandom(700_000)
    started = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
    recording_id = await seed_recording(server, org.organization_id, "/cli-rec", started=started, content=content)
    listed = herewith(server, org.api_key, "recordings", "list")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.strip().split("\t")
    assert row[:4] == [recording_id, "/cli-rec", "2030-01-01T12:00:00Z", "ready"] and row[4] == "0.700"

    target = tmp_path / "call.mp4"
    got = herewith_process(server, org.api_key, "recordings", "download", recording_id, "-o", str(target),
                           tty_stderr=True)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"{target}\t{len(content)}" and target.read_bytes() == content
    assert "call.mp4" in got.stderr and "100%" in got.stderr  # the progress bar, on stderr
    gone = herewith(server, org.api_key, "recordings", "download", "no-such-recording", "-o", str(tmp_path / "x"))
    assert gone.returncode == 1 and "404" in gone.stderr and not (tmp_path / "x").exists()
