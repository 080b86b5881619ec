"""The ``herewith`` command: orgs and keys managed from the shell act on the running server at once."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx


def herewith(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEREWITH_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["HEREWITH_DATABASE_URL"] = settings.database_url
    return subprocess.run([sys.executable, "-m", "herewith", *args], env=env, capture_output=True, text=True, timeout=60)


def test_orgs_and_keys_lifecycle(server):
    s = server.settings
    created = herewith(s, "orgs", "create", "Acme Health", "--plan", "build")
    assert created.returncode == 0, created.stderr
    org_id = created.stdout.strip()
    listing = herewith(s, "orgs", "list").stdout
    assert org_id in listing and "build" in listing and "Acme Health" in listing

    key = herewith(s, "keys", "create", org_id, "--name", "backend").stdout.strip()
    assert key.startswith("hw_") and len(key) > 40
    keys = herewith(s, "keys", "list", "--org", org_id).stdout
    assert key not in keys, "the key itself must never be shown again"
    assert "active" in keys and "backend" in keys
    key_id = keys.split("\t")[0]

    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(server.base_url + "/v1/meetings", headers=headers).status_code == 200
    revoked = herewith(s, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    r = httpx.get(server.base_url + "/v1/meetings", headers=headers)
    assert r.status_code == 401 and r.json() == {"error": "Access token is missing or invalid"}
    assert "revoked" in herewith(s, "keys", "list", "--org", org_id).stdout


def test_cli_errors_are_clear(server):
    s = server.settings
    bad_plan = herewith(s, "orgs", "create", "X", "--plan", "platinum")
    assert bad_plan.returncode == 1 and "plan" in bad_plan.stderr
    missing = herewith(s, "keys", "create", "no-such-org")
    assert missing.returncode == 1 and "no-such-org" in missing.stderr
    assert herewith(s, "keys", "revoke", "no-such-key").returncode == 1
