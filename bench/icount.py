"""Instructions per request in a real ``herewith serve`` process, counted by valgrind (callgrind).

The shared 2-core test machine swings by ±15 % between identical timed runs, so a 5 % change cannot be
seen in req/s. Instruction counts do not depend on what else the machine does: the same code and inputs
give the same count (to a fraction of a percent). They do not see cache misses or kernel time, so they
complement the timed benchmarks (``bench/api.py``, ``bench/ratelimit.py``) rather than replace them.

The server runs under ``valgrind --tool=callgrind --instr-atstart=no`` (SQLite in a temporary data
directory, or a fresh PostgreSQL database; no SFU); for each scenario a client sends a warm-up, instrumentation is switched on with
``callgrind_control``, the client sends exactly ``--requests`` requests over 32 keep-alive connections and
reads every response (so no request is cut off, unlike a timed load whose end disconnects the requests in
flight), then instrumentation is switched off and the counters are dumped. The organization's budget is
far above the load.

Usage::

    .venv/bin/python bench/icount.py                          # healthz, POST, GET on SQLite; limiter off
    .venv/bin/python bench/icount.py --databases sqlite,postgresql  # ... and on PostgreSQL
    .venv/bin/python bench/icount.py --ratelimit memory,redis # GET with each limiter as well (SQLite)
    .venv/bin/python bench/icount.py --scenarios healthz,post --no-write   # a quick look, nothing written
    .venv/bin/python bench/icount.py --cache-sim --databases sqlite,postgresql  # ... and simulated cache misses

``--cache-sim`` adds callgrind's cache simulation (``--cache-sim=yes``: first-level instruction and data
caches and the last level, sized like the host's): misses per request show how much of a path's code and
data stays in the caches under load, which instruction counts alone cannot tell (it writes
``bench/results/icount-cache.json``).

Writes ``bench/results/icount.json``. Needs valgrind (Debian package ``valgrind``); Redis on 127.0.0.1:6379
for ``--ratelimit redis``.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sqlalchemy import text  # noqa: E402

from tests.support.servers import (  # noqa: E402
    create_org_key,
    create_pg_database,
    drop_pg_database,
    free_port,
    run_sync,
    wait_healthy,
)
from herewith.config import Settings  # noqa: E402
from herewith.db.engine import create_engine  # noqa: E402

REDIS_URL = os.environ.get("HEREWITH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BODY = b'{"endDate": "2099-02-18T14:23:00.000Z", "fields": ["hostRoomUrl"]}'
LIMITERS = {
    "off": {"HEREWITH_RATELIMIT_ENABLED": "false"},
    "memory": {"HEREWITH_RATELIMIT_ENABLED": "true", "HEREWITH_RATELIMIT_BACKEND": "memory"},
    "redis": {"HEREWITH_RATELIMIT_ENABLED": "true", "HEREWITH_RATELIMIT_BACKEND": "redis",
              "HEREWITH_REDIS_URL": REDIS_URL},
}


async def _send(port: int, request: bytes, total: int, connections: int = 32) -> None:
    """``total`` requests over ``connections`` keep-alive connections, each response read in full."""

    async def one(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 2"):
                raise RuntimeError(f"unexpected answer: {head[:60]!r}")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
        writer.close()

    await asyncio.gather(*(one(total // connections) for _ in range(connections)))


def _request(method: str, path: str, key: str | None, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _lift_budget(settings: Settings, organization_id: str) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE organizations SET rate_limit_points = 1000000000 WHERE id = :id"),
                               {"id": organization_id})
    finally:
        await engine.dispose()


def count(limiter: str, scenarios: list[str], requests: int, database: str = "sqlite",
          cache_sim: bool = False) -> dict[str, Any]:
    """Instructions per request for each scenario, on one server with ``limiter`` and ``database``
    (``sqlite`` | ``postgresql``: the server's instructions only, not PostgreSQL's).

    With ``cache_sim``, each scenario's figure is a dict of callgrind's events per request instead: ``Ir``
    (instructions), ``I1mr``/``ILmr`` (instruction fetches missing the first-level / last-level cache),
    ``Dr``+``Dw`` data accesses and their ``D1m*``/``DLm*`` misses."""
    tmp = Path(tempfile.mkdtemp(prefix="herewith-icount-"))
    db_url = create_pg_database() if database == "postgresql" else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEREWITH_")}
    port = free_port()
    env.update({"HEREWITH_DATA_DIR": str(tmp / "data"), "HEREWITH_HOST": "127.0.0.1", "HEREWITH_PORT": str(port),
                "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_BACKGROUND_TASKS": "false", "HEREWITH_JANUS": "off",
                "HEREWITH_RATELIMIT_PREFIX": f"bench:icount:{os.getpid()}:", **LIMITERS[limiter]})
    if db_url:
        env["HEREWITH_DATABASE_URL"] = db_url
    out = tmp / "callgrind.out"
    sim = ["--cache-sim=yes"] if cache_sim else []
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", *sim, "--instr-atstart=no", f"--callgrind-out-file={out}.%p",
                             sys.executable, "-m", "herewith", "serve"],
                            env=env, stdout=open(tmp / "server.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 900 if cache_sim else 300, proc)  # a loaded machine: start-up under valgrind is slow
        settings = Settings(data_dir=tmp / "data", database_url=db_url)
        org = run_sync(create_org_key(settings))
        run_sync(_lift_budget(settings, org.organization_id))
        meeting = httpx.post(url + "/v1/meetings", headers=org.headers, json={"endDate": "2099-01-01T00:00:00Z"},
                             timeout=60).json()["meetingId"]
        wanted = {"healthz": _request("GET", "/healthz", None),
                  "post": _request("POST", "/v1/meetings", org.api_key, BODY),
                  "get": _request("GET", f"/v1/meetings/{meeting}", org.api_key)}
        result = {}
        for name in scenarios:
            # With the cache simulation the server is ~100x slower than natively, and valgrind runs one thread at
            # a time: even 8 POSTs queued for SQLite's one writer connection waited longer than the pool's 30 s
            # timeout. So one request at a time: the misses of one request's path, without queueing.
            connections = 1 if cache_sim else 32
            asyncio.run(_send(port, wanted[name], 64, connections))  # warm-up
            control = ["callgrind_control"]
            subprocess.run([*control, "-z", str(proc.pid)], capture_output=True, check=True)
            subprocess.run([*control, "-i", "on", str(proc.pid)], capture_output=True, check=True)
            asyncio.run(_send(port, wanted[name], requests, connections))
            subprocess.run([*control, "-i", "off", str(proc.pid)], capture_output=True, check=True)
            subprocess.run([*control, "-d", name, str(proc.pid)], capture_output=True, check=True)
            time.sleep(0.5)
            dump = max(glob.glob(f"{out}.*"), key=os.path.getmtime)
            text_ = Path(dump).read_text()
            served = requests // connections * connections
            totals = [int(x) for x in re.search(r"^totals: ([\d ]+)$", text_, re.M).group(1).split()]
            if cache_sim:
                events = re.search(r"^events: (.*)$", text_, re.M).group(1).split()
                result[name] = {e: round(v / served) for e, v in zip(events, totals)}
                print(f"{database:10} {name:8} " + " ".join(f"{e} {v / 1000:.1f}k" for e, v in result[name].items()),
                      flush=True)
                continue
            result[name] = round(totals[0] / served)
            print(f"{database:10} limiter {limiter:6} {name:8} {result[name] / 1000:8.1f}k instructions/request", flush=True)
        return result
    except Exception:
        log = (tmp / "server.log").read_text(errors="replace").splitlines()
        print("server log, last lines:\n" + "\n".join(log[-30:]), file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if db_url:
            drop_pg_database(db_url)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--ratelimit", default="", help="also count GET with these limiters (SQLite): memory,redis")
    ap.add_argument("--databases", default="sqlite", help="sqlite,postgresql")
    ap.add_argument("--scenarios", default="healthz,post,get", help="of healthz,post,get (healthz is the baseline)")
    ap.add_argument("--no-write", action="store_true", help="print the figures only; leave bench/results alone")
    ap.add_argument("--cache-sim", action="store_true",
                    help="simulated cache misses per request as well (slower); writes icount-cache.json")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    databases = [d for d in args.databases.split(",") if d]
    if not set(databases) <= {"sqlite", "postgresql"}:
        sys.exit("--databases: sqlite and/or postgresql")
    scenarios = [x for x in args.scenarios.split(",") if x]
    if "healthz" not in scenarios or not set(scenarios) <= {"healthz", "post", "get"}:
        sys.exit("--scenarios: healthz and any of post, get")
    if args.cache_sim:
        cache_main(args, databases, scenarios)
        return
    runs = {db: {"off": count("off", scenarios, args.requests, db)} for db in databases}
    for limiter in [x for x in args.ratelimit.split(",") if x]:
        runs.setdefault("sqlite", {})[limiter] = count(limiter, ["get"], args.requests)
    summary = {}
    for db, by_limiter in runs.items():
        off = by_limiter.get("off")
        if off:
            summary[db] = {f"{name}_vs_healthz": round(off[name] / off["healthz"], 3)
                           for name in ("post", "get") if name in off}
            summary[db].update({f"get_with_{m}_limiter_vs_off": round(r["get"] / off["get"], 3)
                                for m, r in by_limiter.items() if m != "off"})
    results = {
        "benchmark": "icount",
        "what": "instructions per request in the server process (callgrind), 32 keep-alive connections",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "requests": args.requests,
        "instructions_per_request": runs,
        "ratios": summary,
    }
    print(json.dumps(summary))
    if args.no_write:
        return
    out = ROOT / "bench" / "results" / "icount.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def cache_main(args: argparse.Namespace, databases: list[str], scenarios: list[str]) -> None:
    """``--cache-sim``: callgrind's simulated cache misses per request, and each scenario's ratios to healthz."""
    runs = {db: count("off", scenarios, args.requests, db, cache_sim=True) for db in databases}
    ratios = {db: {name: {e: round(v / max(by["healthz"][e], 1), 2) for e, v in by[name].items()}
                   for name in scenarios if name != "healthz"} for db, by in runs.items()}
    results = {
        "benchmark": "icount-cache",
        "what": "callgrind events per request in the server process with --cache-sim=yes, one request at a time "
                "(Ir instructions; "
                "I1mr/ILmr instruction fetches missing L1/LL; Dr/Dw data reads/writes; D1m*/DLm* their misses)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "requests": args.requests,
        "events_per_request": runs,
        "ratios_to_healthz": ratios,
    }
    print(json.dumps(ratios))
    if args.no_write:
        return
    out = ROOT / "bench" / "results" / "icount-cache.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
