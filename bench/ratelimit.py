"""What the rate limiter costs: throughput of ``GET /v1/meetings/{id}`` with the limiter off, in-process
and on Redis, measured in one run (issue 4; target: the limiter costs 10% or less).

Three ``herewith serve`` processes (one per mode) share one SQLite database in a temporary data directory;
the organization has a budget far above the load so nothing is throttled and every request pays the
full limiter path (Redis mode: requests are admitted from leases of the shared budget, with the server's
TIME as clock; the Redis round trips each request cost are counted from Redis's own ``INFO commandstats``). The load comes
from another process: ``wrk`` (Debian package ``wrk``) when it is on the PATH, else a multiprocess httpx
client. Rounds visit the modes in rotating order; each figure is the median over the rounds, and the
ratio is against the "off" median of the same run. On machines with 2+ CPUs the servers are pinned to
CPU 0 and the load generator to the others, so they don't steal each other's time.

Usage::

    .venv/bin/python bench/ratelimit.py                   # 9 rounds of 3 s per mode
    .venv/bin/python bench/ratelimit.py --rounds 7 --duration 8 --connections 32

Writes ``bench/results/ratelimit.json`` (machine, date, per-round figures, medians, ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ratelimit.json"
REDIS_URL = os.environ.get("HEREWITH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MODES = {
    "off": {"HEREWITH_RATELIMIT_ENABLED": "false"},
    "memory": {"HEREWITH_RATELIMIT_BACKEND": "memory"},
    "redis": {"HEREWITH_RATELIMIT_BACKEND": "redis", "HEREWITH_REDIS_URL": REDIS_URL},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(mode: str, data_dir: Path, log_dir: Path, pin: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEREWITH_")}
    env.update({
        "HEREWITH_DATA_DIR": str(data_dir),
        "HEREWITH_HOST": "127.0.0.1",
        "HEREWITH_PORT": str(port),
        "HEREWITH_LOG_LEVEL": "warning",
        "HEREWITH_BACKGROUND_TASKS": "false",
        "HEREWITH_JANUS": "off",  # no SFU process beside the servers being measured
        "HEREWITH_RATELIMIT_PREFIX": f"bench:rl:{uuid.uuid4().hex}:",
        **MODES[mode],
    })
    cmd = [sys.executable, "-m", "herewith", "serve"]
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", pin, *cmd]
    log = open(log_dir / f"{mode}.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{mode} server exited; see {log_dir / (mode + '.log')}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{mode} server did not start")


def prepare(data_dir: Path) -> str:
    """Create an organization with an effectively unlimited budget and an API key; return the key."""
    from herewith.auth import service as auth_service
    from herewith.config import Settings
    from herewith.db.engine import create_engine, create_sessionmaker
    from herewith.db.migrate import upgrade
    from herewith.ratelimit import service as ratelimit_service

    async def go() -> str:
        engine = create_engine(Settings(data_dir=data_dir))
        try:
            await upgrade(engine)
            async with create_sessionmaker(engine)() as session:
                org = await auth_service.create_organization(session, "Bench")
                await ratelimit_service.set_limit(session, org.id, points=10**9)
                _, key = await auth_service.create_api_key(session, org.id, "bench")
                await session.commit()
                return key
        finally:
            await engine.dispose()

    return asyncio.run(go())


# --- load generators ------------------------------------------------------------------------------


def run_wrk(url: str, key: str, duration: float, connections: int, threads: int, pin: str | None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
           "-H", f"Authorization: Bearer {key}", url]
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", pin, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    p50_ms = None
    if p50:
        p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return {"rps": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else None, "p50_ms": p50_ms}


def _httpx_worker(url: str, key: str, duration: float, concurrency: int, q: mp.Queue) -> None:
    async def main() -> tuple[int, int]:
        ok = bad = 0
        stop = time.monotonic() + duration
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits) as c:
            async def loop() -> None:
                nonlocal ok, bad
                while time.monotonic() < stop:
                    r = await c.get(url)
                    if r.status_code == 200:
                        ok += 1
                    else:
                        bad += 1
            await asyncio.gather(*(loop() for _ in range(concurrency)))
        return ok, bad

    q.put(asyncio.run(main()))


def run_httpx(url: str, key: str, duration: float, connections: int, processes: int, pin: str | None) -> dict:
    q: mp.Queue = mp.Queue()
    per = max(1, connections // processes)
    procs = [mp.Process(target=_httpx_worker, args=(url, key, duration, per, q)) for _ in range(processes)]
    t = time.monotonic()
    for p in procs:
        p.start()
        if pin and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(p.pid, {int(c) for c in pin.split(",")})
            except OSError:
                pass
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t
    ok = sum(r[0] for r in results)
    return {"rps": ok / elapsed, "requests": ok + sum(r[1] for r in results), "non_2xx": sum(r[1] for r in results),
            "socket_errors": None, "p50_ms": None}


# --- the limiter alone ---------------------------------------------------------------------------


def micro(n_memory: int = 20000, n_redis: int = 5000) -> dict:
    """Microseconds per ``RateLimiter.hit`` without HTTP: in-process, and Redis (admitted from leases)."""
    from herewith.ratelimit import MemoryBackend, RateLimiter, RedisBackend

    async def go() -> dict:
        out: dict[str, float] = {}
        mem = RateLimiter(MemoryBackend())
        red = RateLimiter(RedisBackend.from_url(REDIS_URL, prefix=f"bench:micro:{uuid.uuid4().hex}:"))
        try:
            for name, lim, n in (("memory", mem, n_memory), ("redis", red, n_redis)):
                runs = []
                for _ in range(3):
                    t = time.perf_counter()
                    for _ in range(n):
                        await lim.hit("organization:bench", 1, 10**9)
                    runs.append((time.perf_counter() - t) / n * 1e6)
                out[name] = round(statistics.median(runs), 2)
        finally:
            await red.aclose()
        return out

    return asyncio.run(go())


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads / httpx processes")
    ap.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    ap.add_argument("--no-pin", action="store_true", help="don't pin servers and load to separate CPUs")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()

    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    ncpu = os.cpu_count() or 1
    server_pin = load_pin = None
    if ncpu >= 2 and not args.no_pin:
        server_pin, load_pin = "0", ",".join(str(c) for c in range(1, ncpu))

    tmp = Path(tempfile.mkdtemp(prefix="herewith-bench-"))
    data_dir = tmp / "data"
    key = prepare(data_dir)
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    import redis

    redis_client = redis.Redis.from_url(REDIS_URL)
    try:
        for mode in MODES:
            servers[mode] = start_server(mode, data_dir, tmp, server_pin)
        base = servers["off"][1]
        r = httpx.post(base + "/v1/meetings", headers={"Authorization": f"Bearer {key}"},
                       json={"endDate": "2099-02-18T14:23:00.000Z"})
        r.raise_for_status()
        meeting_id = r.json()["meetingId"]
        path = f"/v1/meetings/{meeting_id}"
        for mode, (_, b) in servers.items():  # sanity: the limiter is on where it should be
            h = httpx.get(b + path, headers={"Authorization": f"Bearer {key}"}).headers
            assert ("x-ratelimit-limit" in h) == (mode != "off"), (mode, dict(h))

        def script_calls() -> int:
            stats = redis_client.info("commandstats")
            return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))

        def measure(mode: str, duration: float) -> dict:
            url = servers[mode][1] + path
            pid = servers[mode][0].pid
            calls0 = script_calls() if mode == "redis" else 0
            cpu0 = cpu_seconds(pid)
            if tool == "wrk":
                res = run_wrk(url, key, duration, args.connections, args.threads, load_pin)
            else:
                res = run_httpx(url, key, duration, args.connections, args.threads, load_pin)
            # CPU the server spent per request: hardly disturbed by other load on the machine,
            # unlike req/s; 1 / this is the throughput of one process that has a CPU to itself.
            res["server_cpu_us_per_request"] = round((cpu_seconds(pid) - cpu0) / max(1, res["requests"]) * 1e6, 1)
            if mode == "redis":
                res["redis_round_trips_per_request"] = round((script_calls() - calls0) / max(1, res["requests"]), 5)
            return res

        for mode in MODES:  # warm-up
            measure(mode, 2)
        rounds: dict[str, list[dict]] = {m: [] for m in MODES}
        order = list(MODES)
        for i in range(args.rounds):
            for mode in order[i % len(order):] + order[: i % len(order)]:
                res = measure(mode, args.duration)
                rounds[mode].append(res)
                print(f"round {i + 1} {mode:7s} {res['rps']:9.1f} req/s  p50 {res['p50_ms']} ms  "
                      f"server CPU {res['server_cpu_us_per_request']} us/req  non-2xx {res['non_2xx']}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    micro_us = micro()
    print(f"limiter alone, microseconds per hit: {micro_us}")
    medians = {m: statistics.median(r["rps"] for r in rs) for m, rs in rounds.items()}
    cpu = {m: statistics.median(r["server_cpu_us_per_request"] for r in rs) for m, rs in rounds.items()}
    summary = {}
    for m in MODES:
        # paired: each round's mode against the same round's "off" (measured seconds apart), then the median
        paired = [r["rps"] / off["rps"] for r, off in zip(rounds[m], rounds["off"])]
        summary[m] = {
            "median_rps": round(medians[m], 1),
            "ratio_vs_off": round(medians[m] / medians["off"], 4),
            "median_paired_ratio_vs_off": round(statistics.median(paired), 4),
            "median_server_cpu_us_per_request": cpu[m],
            "cpu_throughput_ratio_vs_off": round(cpu["off"] / cpu[m], 4),
            "cost_percent_by_cpu": round(100 * (1 - cpu["off"] / cpu[m]), 2),
            "median_p50_ms": (statistics.median(r["p50_ms"] for r in rounds[m]) if rounds[m][0]["p50_ms"] is not None else None),
        }
        if m == "redis":
            summary[m]["median_redis_round_trips_per_request"] = statistics.median(
                r["redis_round_trips_per_request"] for r in rounds[m])
    result = {
        "benchmark": "ratelimit",
        "what": "GET /v1/meetings/{id}, one server process per mode, limiter off / in-process / Redis",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "hostname": platform.node(),
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpus": ncpu,
            "python": platform.python_version(),
        },
        "settings": {
            "tool": tool, "rounds": args.rounds, "duration_s": args.duration, "connections": args.connections,
            "threads": args.threads, "server_cpus": server_pin, "load_cpus": load_pin, "database": "sqlite",
            "redis": REDIS_URL,
        },
        "rounds": rounds,
        "summary": summary,
        "limiter_alone_us_per_hit": micro_us,
        "target": "limiter costs <= 10%: server CPU per request within 1/0.9 of off "
                  "(cpu_throughput_ratio_vs_off >= 0.90); req/s ratios are reported too but swing with other "
                  "load on a shared machine",
        "target_met": {m: summary[m]["cpu_throughput_ratio_vs_off"] >= 0.90 for m in ("memory", "redis")},
        "load_average_at_end": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print()
    for m, s in summary.items():
        print(f"{m:7s} median {s['median_rps']:9.1f} req/s  ratio vs off {s['ratio_vs_off']:.3f} "
              f"(paired {s['median_paired_ratio_vs_off']:.3f})  server CPU {s['median_server_cpu_us_per_request']} us/req "
              f"-> throughput ratio {s['cpu_throughput_ratio_vs_off']:.3f} (cost {s['cost_percent_by_cpu']:+.1f}%)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
