"""Cross-tenant webhook isolation: how late one organization's event arrives while another organization's
endpoint hangs with a backlog.

Organization A's receiver on 127.0.0.1 reads each request and answers only after the delivery timeout (every
attempt ends in a timeout); A has ``--backlog`` events queued. Then one event is written for organization B,
whose receiver answers at once. The figure is the time from B's event being committed to B's receiver having
it, in seconds (wall clock), with A's receiver still hanging. The baseline of the same run is B's latency with
no backlog at A (``idle_s``).

One real server (``ThreadServer``: uvicorn in a thread, the app's own delivery worker) per database, with
``webhook_timeout_seconds`` as given (default 5, the product default).

Usage::

    .venv/bin/python bench/webhook_isolation.py                        # SQLite and PostgreSQL (127.0.0.1:5432)
    .venv/bin/python bench/webhook_isolation.py --databases sqlite --backlog 20 --give-up 240

Writes ``bench/results/webhook_isolation.json`` (machine, date, figures per database).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from herewith.config import Settings  # noqa: E402
from tests.support.servers import ThreadServer, create_org_key, create_pg_database, drop_pg_database, run_sync  # noqa: E402
from tests.webhooks.helpers import Receiver  # noqa: E402


def _enqueue(server: ThreadServer, organization_id: str, n: int) -> None:
    async def go() -> None:
        from herewith.webhooks import service

        async with server.services.sessionmaker() as s:
            now = server.clock.now()
            for i in range(n):
                await service.enqueue(s, organization_id, "room.client.knocked", {"n": i}, now)
            await s.commit()
        server.services.webhook_wakeup.set()

    server.run_coro(go())


def _latency(server: ThreadServer, organization_id: str, receiver: Receiver, give_up: float) -> float | None:
    """Seconds until ``receiver`` has one more request after an event is enqueued; None after ``give_up``."""
    before = len(receiver.received)
    start = time.perf_counter()
    _enqueue(server, organization_id, 1)
    while len(receiver.received) <= before:
        if time.perf_counter() - start > give_up:
            return None
        time.sleep(0.005)
    return round(time.perf_counter() - start, 3)


def run(db: str, backlog: int, timeout: float, give_up: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-isolation-"))
    url = create_pg_database() if db == "postgresql" else None
    settings = Settings(data_dir=tmp / "data", database_url=url, secret_key="bench-secret-0123456789abcdef",
                        webhook_poll_seconds=1.0, webhook_timeout_seconds=timeout, log_level="warning",
                        ratelimit_enabled=False, webhook_allow_private_targets=True)
    server = ThreadServer(settings).start()
    hanging = Receiver(delay=timeout + 30).start()
    healthy = Receiver().start()
    try:
        org_a = run_sync(create_org_key(server.settings, "A (hanging)"))
        org_b = run_sync(create_org_key(server.settings, "B"))

        async def endpoints() -> None:
            from herewith.webhooks import service
            from herewith.webhooks.schemas import CreateWebhookRequest
            from herewith.webhooks.targets import TargetPolicy

            policy = TargetPolicy.from_settings(server.settings)
            async with server.services.sessionmaker() as s:
                await service.create_endpoint(s, org_a.organization_id, CreateWebhookRequest(url=hanging.url),
                                              server.clock.now(), policy)
                await service.create_endpoint(s, org_b.organization_id, CreateWebhookRequest(url=healthy.url),
                                              server.clock.now(), policy)
                await s.commit()

        server.run_coro(endpoints())
        idle = _latency(server, org_b.organization_id, healthy, give_up)
        _enqueue(server, org_a.organization_id, backlog)
        deadline = time.monotonic() + 30
        while hanging.started < 1 and time.monotonic() < deadline:  # A's first attempt is hanging now
            time.sleep(0.01)
        loaded = _latency(server, org_b.organization_id, healthy, give_up)
        return {"backlog_at_a": backlog, "timeout_s": timeout, "idle_s": idle, "with_a_hanging_s": loaded,
                "gave_up_after_s": give_up if loaded is None else None, "a_attempts_started": hanging.started}
    finally:
        hanging.stop()
        healthy.stop()
        server.stop()
        if url:
            drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--backlog", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--give-up", type=float, default=240.0)
    args = parser.parse_args()
    results = {db: run(db, args.backlog, args.timeout, args.give_up) for db in args.databases.split(",")}
    out = {
        "benchmark": "webhook_isolation",
        "what": "seconds until organization B's event reaches its receiver while organization A's endpoint hangs "
                "(every attempt times out) with a backlog; idle_s: the same with nothing queued at A",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"hostname": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "results": results,
    }
    path = Path(__file__).with_name("results") / "webhook_isolation.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
