"""Signaling capacity and relay latency under load, alone or beside long insights queries.

Starts ``herewith serve`` (one process, SQLite, rate limits off), creates ``--rooms`` meetings through the API,
then connects ``--participants`` WebSocket clients (``--rooms`` rooms, evenly spread) from ``--client-procs``
other processes. With everyone connected it records the server's RSS, then every client relays ``--rate``
offers per second to another participant of its room for ``--seconds`` seconds; each offer carries its send
time, so the receiving client (same process, same clock) measures the relay latency through the server.
The baseline of the same run is an idle ``ping``/``pong`` round trip to the server, measured before the load.

Usage::

    .venv/bin/python bench/signaling.py [--participants 2000] [--rooms 500] [--seconds 20] [--rate 1]
    .venv/bin/python bench/signaling.py --insights-rows 100000     # GET /v1/insights/rooms over 100,000 rows
                                                                   # back to back while the relay is measured

Writes ``bench/results/signaling.json``; targets: 2,000 participants in 500 rooms under 1 GiB RSS, relay p99 at
50 ms or less.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.servers import ProcessServer, create_org_key, run_sync  # noqa: E402

from herewith.config import Settings  # noqa: E402


def raise_nofile(n: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard) if hard != resource.RLIM_INFINITY else max(soft, n)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


# ------------------------------------------------------------------------------------------ client process
def client_proc(ws_url: str, rooms: list[str], per_room: int, rate: float, seconds: float, q: mp.Queue,
                go: mp.Event, done_connect: mp.Event, stats_every: float) -> None:
    raise_nofile()
    # The load generator holds 1,000 connections per process too: give it the server's collector settings,
    # so its own pauses don't count as relay latency.
    from herewith.kit.gc_tuning import configure_gc

    configure_gc()
    asyncio.run(_clients(ws_url, rooms, per_room, rate, seconds, q, go, done_connect, stats_every))


async def _clients(ws_url: str, rooms: list[str], per_room: int, rate: float, seconds: float, q: mp.Queue,
                   go: mp.Event, done_connect: mp.Event, stats_every: float) -> None:
    import websockets

    latencies: list[float] = []
    ping_rtts: list[float] = []
    errors = 0
    members: dict[str, list[str]] = {}
    conns: list = []
    readers: list[asyncio.Task] = []
    t_connect = time.perf_counter()

    async def reader(ws) -> None:  # noqa: ANN001
        nonlocal errors
        try:
            async for raw in ws:
                m = json.loads(raw)
                t = m.get("type")
                if t == "offer":
                    latencies.append((time.perf_counter() - float(m["sdp"][2:])) * 1000)
                elif t == "ping":
                    await ws.send('{"type":"pong"}')
                elif t == "pong" and ws.ping_sent is not None:
                    ping_rtts.append((time.perf_counter() - ws.ping_sent) * 1000)
                    ws.ping_sent = None
                elif t == "error":
                    errors += 1
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, websockets.ConnectionClosed):
                print("reader failed:", repr(exc), flush=True)

    async def connect(room: str) -> None:
        for attempt in range(5):
            try:
                ws = await websockets.connect(f"{ws_url}/signal/{room.lstrip('/')}", ping_interval=None,
                                              open_timeout=60, max_queue=None)
                break
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            raise RuntimeError("could not connect")
        await ws.send(json.dumps({"type": "join", "displayName": "bench"}))
        joined = json.loads(await ws.recv())
        assert joined["type"] == "joined", joined
        ws.pid = joined["participantId"]
        ws.room = room
        ws.ping_sent = None
        members.setdefault(room, []).append(ws.pid)
        conns.append(ws)
        readers.append(asyncio.ensure_future(reader(ws)))

    sem = asyncio.Semaphore(100)

    async def guarded(room: str) -> None:
        async with sem:
            await connect(room)

    await asyncio.gather(*(guarded(r) for r in rooms for _ in range(per_room)))
    gc.collect()
    gc.freeze()  # the connections are long-lived: keep them out of the collections during the load
    connect_s = time.perf_counter() - t_connect
    print(f"[clients {os.getpid()}] {len(conns)} connected in {connect_s:.1f} s", flush=True)
    q.put(("connected", len(conns), connect_s))
    done_connect.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)

    # idle baseline: ping/pong round trips
    for ws in random.Random(1).sample(conns, min(200, len(conns))):
        ws.ping_sent = time.perf_counter()
        await ws.send('{"type":"ping"}')
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)

    # load: every client sends `rate` offers per second to another member of its room
    rng = random.Random(os.getpid())
    start = time.perf_counter()

    stats_msg = json.dumps({"type": "stats", "packetLossSend": 0.1, "packetLossRecv": 0.2, "bitrateSend": 900000,
                            "bitrateRecv": 850000, "sampleRateMs": 5000})

    async def stats_sender(ws) -> None:  # noqa: ANN001 - what every page sends every 5 s
        await asyncio.sleep(rng.random() * stats_every)
        while time.perf_counter() - start < seconds:
            await ws.send(stats_msg)
            await asyncio.sleep(stats_every)

    async def sender(ws) -> None:  # noqa: ANN001
        others = [p for p in members[ws.room] if p != ws.pid]
        if stats_every > 0:
            asyncio.ensure_future(stats_sender(ws))
        await asyncio.sleep(rng.random() / rate)
        n = 0
        while time.perf_counter() - start < seconds:
            to = others[n % len(others)]
            n += 1
            await ws.send(json.dumps({"type": "offer", "to": to, "sdp": f"t={time.perf_counter()!r}"}))
            await asyncio.sleep(1 / rate)

    print(f"[clients {os.getpid()}] load starts", flush=True)
    outcomes = await asyncio.gather(*(sender(ws) for ws in conns), return_exceptions=True)
    failures: dict[str, int] = {}
    for o in outcomes:
        if isinstance(o, BaseException):
            failures[repr(o)[:120]] = failures.get(repr(o)[:120], 0) + 1
    if failures:
        print(f"[clients {os.getpid()}] sender failures: {failures}", flush=True)
    print(f"[clients {os.getpid()}] load done: {len(latencies)} offers received", flush=True)
    await asyncio.sleep(1.0)
    q.put(("result", latencies, ping_rtts, errors))
    for ws in conns:
        await ws.close()


# ------------------------------------------------------------------------------------------------- main
def seed_insights(settings: Settings, organization_id: str, participants: int, per_session: int = 100) -> None:
    """Write ``participants`` participant rows (``per_session`` per room session, one meeting each) for the
    organization straight into the database, so that insights queries have that much to read."""
    from datetime import timedelta

    from sqlalchemy import insert

    from herewith.db.engine import create_engine
    from herewith.meetings.models import Meeting
    from herewith.sessions.models import RoomParticipant, RoomSession

    async def seed() -> None:
        engine = create_engine(settings)
        start = datetime(2030, 1, 1, tzinfo=timezone.utc)
        sessions = participants // per_session
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(Meeting), [
                    {"id": f"seed-m-{i}", "organization_id": organization_id, "room_name": f"/seed-{i}",
                     "room_mode": "normal", "is_locked": False, "start_date": start, "end_date": start + timedelta(days=3650)}
                    for i in range(sessions)])
                await conn.execute(insert(RoomSession), [
                    {"id": f"seed-s-{i}", "organization_id": organization_id, "meeting_id": f"seed-m-{i}",
                     "room_name": f"/seed-{i}", "started_at": start, "ended_at": start + timedelta(hours=1)}
                    for i in range(sessions)])
                for i in range(sessions):
                    await conn.execute(insert(RoomParticipant), [
                        {"organization_id": organization_id, "meeting_id": f"seed-m-{i}", "room_name": f"/seed-{i}",
                         "room_session_id": f"seed-s-{i}", "participant_id": f"seed-p-{i}-{j}", "role_name": "visitor",
                         "joined_at": start + timedelta(seconds=j), "left_at": start + timedelta(minutes=30 + j)}
                        for j in range(per_session)])
        finally:
            await engine.dispose()

    run_sync(seed(), timeout=600)


def insights_load(base_url: str, headers: dict[str, str], stop: "threading.Event", out: list[float]) -> None:
    """Ask for the organization's room insights (every room session and participant row) back to back until
    ``stop``; append each answer's seconds to ``out``."""
    with httpx.Client(base_url=base_url + "/v1", headers=headers, timeout=120) as http:
        while not stop.is_set():
            t = time.monotonic()
            r = http.get("/insights/rooms", params={"limit": 10, "sortBy": "totalParticipantMinutes:desc"})
            r.raise_for_status()
            out.append(time.monotonic() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=2000)
    ap.add_argument("--rooms", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=0.5, help="relayed offers per second per participant")
    ap.add_argument("--stats-every", type=float, default=5.0, help="seconds between stats samples per participant (0: none)")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--insights-rows", type=int, default=0,
                    help="seed this many participant rows and run insights queries over them during the load")
    args = ap.parse_args()
    raise_nofile()
    per_room = args.participants // args.rooms

    tmp = Path(tempfile.mkdtemp(prefix="herewith-bench-sig-"))
    settings = Settings(data_dir=tmp, secret_key="bench-secret-0123456789abcdef")
    org = run_sync(create_org_key(settings, "bench"))
    if args.insights_rows:
        seed_insights(settings, org.organization_id, args.insights_rows)
    server = ProcessServer({"HEREWITH_DATA_DIR": str(tmp), "HEREWITH_SECRET_KEY": settings.secret_key,
                            "HEREWITH_RATELIMIT_ENABLED": "false", "HEREWITH_LOG_LEVEL": "warning",
                            "HEREWITH_BACKGROUND_TASKS": "false"}, log_path=tmp / "server.log").start()
    try:
        pid = server.proc.pid
        rss_idle = rss_mib(pid)
        with httpx.Client(base_url=server.base_url + "/v1", headers=org.headers, timeout=30) as http:
            rooms = [http.post("/meetings", json={"endDate": "2099-01-01T00:00:00Z"}).json()["roomName"]
                     for _ in range(args.rooms)]
        rss_rooms = rss_mib(pid)
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        go = ctx.Event()
        procs, connected_events = [], []
        chunks = [rooms[i :: args.client_procs] for i in range(args.client_procs)]
        ws_url = server.base_url.replace("http://", "ws://")
        for chunk in chunks:
            ev = ctx.Event()
            p = ctx.Process(target=client_proc, args=(ws_url, chunk, per_room, args.rate, args.seconds, q, go, ev,
                                                       args.stats_every))
            p.start()
            procs.append(p)
            connected_events.append(ev)
        connected, connect_times = 0, []
        for _ in procs:
            kind, n, secs = q.get(timeout=600)
            connected += n
            connect_times.append(secs)
        # Let the join storm settle: every join is recorded (room sessions, webhook outbox) after the
        # participant is in, so the server keeps working for a while after the last socket connected.
        # The relay is measured in steady state, once the server's CPU stays under 15% for a second.
        settle_start = time.monotonic()
        time.sleep(2)
        while time.monotonic() - settle_start < 180:
            c0 = cpu_seconds(pid)
            time.sleep(1)
            if cpu_seconds(pid) - c0 < 0.15:
                break
        settled_after = time.monotonic() - settle_start
        rss_connected = rss_mib(pid)
        query_seconds: list[float] = []
        stop_queries = threading.Event()
        query_thread = None
        if args.insights_rows:
            query_thread = threading.Thread(target=insights_load, args=(server.base_url, org.headers, stop_queries,
                                                                        query_seconds), daemon=True)
            query_thread.start()
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        go.set()
        latencies: list[float] = []
        pings: list[float] = []
        errors = 0
        rss_peak = rss_connected
        for _ in procs:
            while True:
                try:
                    item = q.get(timeout=1)
                    break
                except Exception:  # noqa: BLE001 - queue.Empty while the load runs
                    rss_peak = max(rss_peak, rss_mib(pid))
            _, lat, pi, err = item
            latencies += lat
            pings += pi
            errors += err
        server_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        stop_queries.set()
        if query_thread is not None:
            query_thread.join(timeout=120)
        for p in procs:
            p.join(timeout=30)
    finally:
        server.stop()

    expected = connected * args.rate * args.seconds
    result = {
        "benchmark": "signaling",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {"participants": connected, "rooms": args.rooms, "per_room": per_room, "client_processes": args.client_procs,
                  "load_seconds": args.seconds, "offers_per_second_per_participant": args.rate,
                  "offers_per_second_total": connected * args.rate,
                  "stats_samples_per_second_total": round(connected / args.stats_every) if args.stats_every else 0},
        "server_cpu_cores_under_load": round(server_cpu, 2),
        "load_average_1min": os.getloadavg()[0],
        "connect_seconds": round(max(connect_times), 2),
        "settled_after_connect_seconds": round(settled_after, 1),
        "rss_mib": {"idle": round(rss_idle, 1), "after_meetings": round(rss_rooms, 1),
                    "all_connected": round(rss_connected, 1), "peak_under_load": round(rss_peak, 1)},
        "baseline_ping_rtt_ms": {"p50": round(pct(pings, 50), 2), "p99": round(pct(pings, 99), 2), "n": len(pings)},
        "relay_latency_ms": {"p50": round(pct(latencies, 50), 2), "p90": round(pct(latencies, 90), 2),
                             "p99": round(pct(latencies, 99), 2), "max": round(max(latencies), 2) if latencies else None,
                             "mean": round(statistics.fmean(latencies), 2) if latencies else None,
                             "n": len(latencies), "expected": int(expected)},
        "errors": errors,
        "insights_queries": ({"participant_rows": args.insights_rows, "n": len(query_seconds),
                              "seconds_p50": round(pct(query_seconds, 50), 3) if query_seconds else None,
                              "seconds_max": round(max(query_seconds), 3) if query_seconds else None}
                             if args.insights_rows else None),
        "targets": {"participants": 2000, "rss_mib_max": 1024, "relay_p99_ms_max": 50},
    }
    result["met"] = {"participants": connected >= 2000, "rss": rss_peak < 1024,
                     "relay_p99": result["relay_latency_ms"]["p99"] <= 50}
    # One file, one entry per scenario: signaling alone, and with every page's 5-second stats sample
    # flowing through the room-event sinks (insights/webhooks write one transaction per sample).
    scenario = "relay_and_stats_samples" if args.stats_every else "relay_only"
    if args.insights_rows:  # long insights queries on the same server while it relays
        scenario = f"relay_with_insights_queries_{args.insights_rows}_rows"
    out = ROOT / "bench" / "results" / "signaling.json"
    try:
        doc = json.loads(out.read_text())
        doc = doc if "scenarios" in doc else {"scenarios": {}}
    except (OSError, ValueError):
        doc = {"scenarios": {}}
    doc["benchmark"] = "signaling"
    doc["scenarios"][scenario] = result
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
