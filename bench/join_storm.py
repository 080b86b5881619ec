"""Join storms killed at random moments: is every acknowledged join in the webhook outbox after a restart?

A participant that received ``joined`` was told it is in the room; its ``room.client.joined`` event (and the
room's ``room.session.started`` once two are in) must survive a ``kill -9`` of the server at any moment
(the live room records the join before telling anyone: ``LiveRoom._admit``). Each round starts
``herewith serve`` on a fresh port, creates rooms and a webhook endpoint that nobody answers (so events stay
in the outbox), opens ``--joins`` signaling connections at once, and SIGKILLs the server after a random delay
of 0..``--max-delay`` seconds. A second server on the same database then starts (so migrations and the
dead-node clean-up run as after a real crash) and the outbox is read: every participant id that got
``joined`` must appear in a ``room.client.joined`` event, and every room where two got ``joined`` must have a
``room.session.started``. Rounds go on until ``--min-joins`` joins were acknowledged, on each database.

Usage::

    .venv/bin/python bench/join_storm.py                    # SQLite and PostgreSQL, >= 200 joins each
    .venv/bin/python bench/join_storm.py --databases sqlite --min-joins 50

Writes ``bench/results/join_storm.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.join_storm import join_and_stay, lost, outbox_events  # noqa: E402
from tests.support.servers import ProcessServer, create_org_key, create_pg_database, drop_pg_database  # noqa: E402

from herewith.config import Settings  # noqa: E402

ROOM_SIZE = 4  # roomMode normal admits four senders


async def one_round(settings: Settings, env: dict[str, str], headers: dict[str, str], joins: int,
                    max_delay: float, log_dir: Path) -> dict:
    server = ProcessServer(env, log_path=log_dir / "server.log").start()
    acknowledged: list[tuple[str, str]] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url + "/v1", headers=headers, timeout=10) as api:
            hook = await api.post("/webhooks", json={"url": "http://127.0.0.1:9/nobody-listens"})
            assert hook.status_code == 201, hook.text
            rooms = []
            for _ in range(-(-joins // ROOM_SIZE)):
                r = await api.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z"})
                rooms.append(r.json()["roomName"])
        ws_url = server.base_url.replace("http", "ws")
        tasks = [asyncio.create_task(join_and_stay(ws_url, rooms[i // ROOM_SIZE], acknowledged)) for i in range(joins)]
        delay = random.uniform(0, max_delay)
        await asyncio.sleep(delay)
    finally:
        server.kill9()
    await asyncio.gather(*tasks, return_exceptions=True)
    second = ProcessServer(env, log_path=log_dir / "server2.log").start()
    second.stop()
    events = await outbox_events(settings)
    lost_joins, lost_sessions = lost(acknowledged, events)
    per_room: dict[str, int] = {}
    for room, _ in acknowledged:
        per_room[room] = per_room.get(room, 0) + 1
    return {"kill_after_s": round(delay, 3), "acknowledged_joins": len(acknowledged),
            "lost_joined_events": len(lost_joins), "rooms_with_two": sum(1 for n in per_room.values() if n >= 2),
            "lost_session_started": len(lost_sessions)}


async def run(database: str, min_joins: int, joins: int, max_delay: float) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="herewith-storm-"))
    url = create_pg_database() if database == "postgresql" else None
    settings = Settings(data_dir=data_dir, database_url=url)
    env = {"HEREWITH_DATA_DIR": str(data_dir), "HEREWITH_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_JANUS": "off",
           # the webhook endpoint is dead on purpose: keep the events pending rather than retried away
           "HEREWITH_WEBHOOK_RETRY_BASE_SECONDS": "3600",
           "HEREWITH_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    if url:
        env["HEREWITH_DATABASE_URL"] = url
    try:
        org = await create_org_key(settings, "Join storm")
        rounds = []
        total = 0
        while total < min_joins:
            result = await one_round(settings, env, org.headers, joins, max_delay, data_dir)
            rounds.append(result)
            total += result["acknowledged_joins"]
            print(database, result, flush=True)
        return {
            "database": database,
            "rounds": rounds,
            "acknowledged_joins": total,
            "lost_joined_events": sum(r["lost_joined_events"] for r in rounds),
            "rooms_with_two": sum(r["rooms_with_two"] for r in rounds),
            "lost_session_started": sum(r["lost_session_started"] for r in rounds),
        }
    finally:
        if url:
            drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--min-joins", type=int, default=200, help="acknowledged joins per database")
    parser.add_argument("--joins", type=int, default=40, help="connections opened per round")
    parser.add_argument("--max-delay", type=float, default=0.6, help="kill within this many seconds (uniform)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "join_storm.json"))
    args = parser.parse_args()
    results = [asyncio.run(run(db, args.min_joins, args.joins, args.max_delay)) for db in args.databases.split(",")]
    report = {
        "what": "kill -9 at a random moment during a join storm; acknowledged joins missing from the outbox",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg": os.getloadavg()},
        "params": {"joins_per_round": args.joins, "max_delay_s": args.max_delay},
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['database']}: {r['acknowledged_joins']} acknowledged joins in {len(r['rounds'])} rounds, "
              f"{r['lost_joined_events']} room.client.joined lost; {r['rooms_with_two']} rooms with two, "
              f"{r['lost_session_started']} room.session.started lost")


if __name__ == "__main__":
    main()
