"""What room events and webhooks cost (issue 5): the room event sink with and without a webhook endpoint
(the outbox write in the same transaction), and delivery throughput and latency to a receiver on 127.0.0.1.

One real server (``ThreadServer``: uvicorn in a thread, the app's own sweeper and delivery worker) per
database; events are handed to the server's room event recorder as the signaling layer's publisher does. The sink
figure without an endpoint is the baseline of the same run. With an endpoint the ratio includes more than the
outbox write (about 1.7 ms at p50 on SQLite, measured with the worker stopped): the delivery worker, the
receiver and the server share this process (one GIL) and, on SQLite, the single writer, while they send
the very events being recorded.

Usage::

    .venv/bin/python bench/webhooks.py                  # SQLite and PostgreSQL (127.0.0.1:5432)
    .venv/bin/python bench/webhooks.py --databases sqlite --events 300

Writes ``bench/results/webhooks.json`` (machine, date, figures per database).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from herewith.config import Settings  # noqa: E402
from tests.support.servers import ThreadServer, create_org_key, create_pg_database, drop_pg_database, run_sync  # noqa: E402
from tests.webhooks.helpers import Receiver, Room, person  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def sink_costs(server: ThreadServer, room: Room, n: int) -> list[float]:
    """Milliseconds per event for ``n`` joins/leaves (every other event changes the session state)."""
    costs = []
    people = [person(f"p{i}") for i in range(n // 2)]
    for p in people:
        t = time.perf_counter()
        room.join(p)
        costs.append((time.perf_counter() - t) * 1000)
    for p in people:
        t = time.perf_counter()
        room.leave(p)
        costs.append((time.perf_counter() - t) * 1000)
    return costs


def run(db: str, events: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    url = create_pg_database() if db == "postgresql" else None
    settings = Settings(data_dir=tmp / "data", database_url=url, secret_key="bench-secret-0123456789abcdef",
                        webhook_poll_seconds=0.05, sweeper_interval_seconds=1.0, log_level="warning",
                        ratelimit_enabled=False, webhook_allow_private_targets=True)  # the receiver is on 127.0.0.1
    server = ThreadServer(settings).start()
    receiver = Receiver().start()
    try:
        org = run_sync(create_org_key(server.settings, "bench"))
        api = httpx.Client(base_url=server.base_url + "/v1", headers=org.headers, timeout=30)
        meeting = lambda: api.post("/meetings", json={"endDate": "2099-02-18T14:23:00.000Z"}).json()  # noqa: E731
        baseline = sink_costs(server, Room(server, meeting(), org.organization_id), events)
        api.post("/webhooks", json={"url": receiver.url})
        with_hook = sink_costs(server, Room(server, meeting(), org.organization_id), events)
        # Delivery: a backlog of ``events`` knocks written into the outbox in one transaction, then timed
        # until the receiver has them all (the worker's own throughput, not the publishing rate).
        deadline = time.monotonic() + 120
        while len(receiver.received) < events and time.monotonic() < deadline:
            time.sleep(0.05)
        receiver.received.clear()
        room = Room(server, meeting(), org.organization_id)

        async def backlog() -> None:
            from herewith.webhooks import service

            async with server.services.sessionmaker() as s:
                now = server.clock.now()
                for i in range(events):
                    await service.enqueue(s, org.organization_id, "room.client.knocked",
                                          {"meetingId": room.meeting["meetingId"], "n": i}, now)
                await s.commit()
            server.services.webhook_wakeup.set()

        start = time.perf_counter()
        server.run_coro(backlog())
        published = time.perf_counter() - start
        while len(receiver.received) < events and time.monotonic() < deadline:
            time.sleep(0.01)
        total = time.perf_counter() - start
        arrived = receiver.received[:]
        return {
            "sink_ms_no_endpoint": {"p50": _pct(baseline, 0.5), "p95": _pct(baseline, 0.95),
                                    "mean": round(statistics.fmean(baseline), 3)},
            "sink_ms_one_endpoint": {"p50": _pct(with_hook, 0.5), "p95": _pct(with_hook, 0.95),
                                     "mean": round(statistics.fmean(with_hook), 3)},
            "sink_ratio_p50": round(_pct(with_hook, 0.5) / _pct(baseline, 0.5), 3),
            "delivery_backlog": {"events": events, "received": len(arrived), "enqueue_s": round(published, 3),
                         "all_received_s": round(total, 3), "events_per_s": round(len(arrived) / total, 1),
                         "distinct_ids": len({json.loads(r.body)["id"] for r in arrived})},
        }
    finally:
        receiver.stop()
        server.stop()
        if url:
            drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    results = {db: run(db, args.events) for db in args.databases.split(",")}
    out = {
        "benchmark": "webhooks",
        "what": "room event sink (ms/event incl. the cross-thread hop, with and without an endpoint); delivery of a backlog to a receiver on 127.0.0.1",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"hostname": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "results": results,
    }
    path = Path(__file__).with_name("results") / "webhooks.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
