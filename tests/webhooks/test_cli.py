"""``herewith webhooks create|list|delete|rotate-secret`` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from herewith.cli import app
from tests.support.servers import create_org_key, run_sync


@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("HEREWITH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HEREWITH_SECRET_KEY", "test-secret-key-0123456789abcdef")
    monkeypatch.setenv("HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")  # the URLs below are on 127.0.0.1
    if settings.database_url:
        monkeypatch.setenv("HEREWITH_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("HEREWITH_DATABASE_URL", raising=False)
    return run_sync(create_org_key(settings, "CLI org"))


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def test_create_list_rotate_delete(cli_env):
    org = cli_env
    r = invoke("webhooks", "create", org.organization_id, "http://127.0.0.1:9/hook", "--event", "room.client.joined",
               "--description", "ops")
    assert r.exit_code == 0, r.output
    webhook_id, secret = r.output.strip().split("\t")
    assert secret.startswith("whsec_")
    r = invoke("webhooks", "list", "--org", org.organization_id)
    assert r.exit_code == 0 and r.output.strip() == (
        f"{webhook_id}\t{org.organization_id}\tenabled\thttp://127.0.0.1:9/hook\troom.client.joined")
    assert secret not in r.output
    r = invoke("webhooks", "rotate-secret", webhook_id)
    assert r.exit_code == 0 and r.output.strip().startswith("whsec_") and r.output.strip() != secret
    r = invoke("webhooks", "delete", webhook_id)
    assert r.exit_code == 0 and r.output.strip() == f"deleted {webhook_id}"
    assert invoke("webhooks", "list").output.strip() == ""
    r = invoke("webhooks", "delete", webhook_id)
    assert r.exit_code == 1 and "No webhook" in r.output


def test_bad_input(cli_env):
    org = cli_env
    r = invoke("webhooks", "create", org.organization_id, "ftp://127.0.0.1/x")
    assert r.exit_code == 1 and "url" in r.output
    r = invoke("webhooks", "create", org.organization_id, "http://127.0.0.1/x", "--event", "nope")
    assert r.exit_code == 1 and "events" in r.output
    r = invoke("webhooks", "create", "no-such-org", "http://127.0.0.1/x")
    assert r.exit_code == 1 and "No organization" in r.output


def test_create_applies_the_target_policy(cli_env, monkeypatch):
    org = cli_env
    monkeypatch.setenv("HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    for url, reason in [("http://127.0.0.1:9/hook", "loopback address"), ("http://10.0.0.5/", "private address"),
                        ("http://2852039166/", "cloud metadata address"), ("http://u:p@hooks.example.com/", "user name")]:
        r = invoke("webhooks", "create", org.organization_id, url)
        assert r.exit_code == 1 and "url" in r.output and reason in r.output, (url, r.output)
    monkeypatch.setenv("HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    r = invoke("webhooks", "create", org.organization_id, "http://0xA9FEA9FE/")
    assert r.exit_code == 1 and "cloud metadata address" in r.output
    r = invoke("webhooks", "create", org.organization_id, "https://hooks.example.com/in")
    assert r.exit_code == 0, r.output
    assert invoke("webhooks", "list").output.count("\n") == 1
