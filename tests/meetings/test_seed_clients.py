"""The vendor docs' client examples (Whereby guide "Using the REST API": curl, Python requests, Node fetch)
work unchanged but for the base URL and the key. The examples are in ``tests/fixtures/seed_clients/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "seed_clients"
VENDOR_URL = "https://api.whereby.dev"
NODE_DIR = Path(__file__).resolve().parents[1] / "clients"


def example(name: str) -> str:
    """One of the guide's examples as the guide shows it; :func:`adapt` replaces only URL and key."""
    return (EXAMPLES / name).read_text()


def adapt(code: str, base_url: str, key: str) -> str:
    return code.replace(VENDOR_URL, base_url).replace("$YOUR_API_KEY", key).replace("YOUR_API_KEY", key)


def check_output(out: str, base_url: str) -> None:
    assert "Status code: 201" in out or "Status code:" not in out
    room = re.search(r"Room URL: (\S+)", out)
    host = re.search(r"Host room URL: (\S+)", out)
    assert room and room.group(1).startswith(base_url + "/")
    assert host and host.group(1).startswith(room.group(1) + "?roomKey=")


def test_curl_example(server, org):
    code = adapt(example("curl.sh"), server.base_url, org.api_key)
    out = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=30).stdout
    import json  # noqa: PLC0415

    body = json.loads(out)
    assert body["roomUrl"].startswith(server.base_url + "/")
    assert body["hostRoomUrl"].startswith(body["roomUrl"] + "?roomKey=")


def test_python_requests_example(server, org):
    code = adapt(example("requests_example.py"), server.base_url, org.api_key)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Status code: 201" in out.stdout
    check_output(out.stdout, server.base_url)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_fetch_example(server, org):
    if not (NODE_DIR / "node_modules" / "cross-fetch").exists():
        pytest.skip("cross-fetch not installed (scripts/test installs it with npm)")
    script = NODE_DIR / "seed_example.js"
    script.write_text(adapt(example("fetch_example.js"), server.base_url, org.api_key))
    try:
        out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=30, cwd=NODE_DIR,
                             env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")})
    finally:
        script.unlink()
    assert out.returncode == 0, out.stderr
    assert "Status code: 201" in out.stdout
    check_output(out.stdout, server.base_url)
