"""Meetings API throughput and latency against a trivial endpoint of the same app.

Starts ``herewith serve`` (one process) on SQLite and on PostgreSQL, and drives it from a second process
with wrk (Debian package ``wrk``): ``GET /healthz`` (the baseline: same app, same middleware, no auth, no
database), ``POST /v1/meetings`` and ``GET /v1/meetings/{id}``. Each scenario runs ``--rounds`` times,
interleaved, and the medians are reported with the ratio to the baseline of the same run.

Usage::

    .venv/bin/python bench/api.py [--seconds 5] [--rounds 3] [--connections 32] [--databases sqlite,postgresql]

Besides req/s and latency, each scenario reports the server process's CPU time per request (user and
system, summed over its threads, from ``/proc``), the share of its CPU it used while wrk ran, and its
context switches per request: a server that is not at 100 % of its CPU is waiting (on a lock, a thread, the
disk), one that is spends its time on work; and what a request costs in CPU time, unlike its instruction
count (``bench/icount.py``), includes cache misses, system calls and thread switches.

Guardrails, checked for each database and written with the figures: ``POST /v1/meetings`` serves at least
0.3x the req/s of ``GET /healthz``, with a p99 latency of at most 50 ms (the medians over the rounds, at the
given connections; 32 by default). The exit status is 1 when one fails.

Writes ``bench/results/api.json``. Needs PostgreSQL on 127.0.0.1:5432 for the PostgreSQL part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.servers import (  # noqa: E402
    ProcessServer,
    create_org_key,
    create_pg_database,
    drop_pg_database,
    run_sync,
)
from herewith.config import Settings  # noqa: E402

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"endDate": "2099-02-18T14:23:00.000Z", "fields": ["hostRoomUrl"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""
GET_LUA = """
wrk.headers["Authorization"] = "Bearer %s"
"""
REPORT_LUA = """
done = function(summary, latency, requests)
  local s = summary.errors
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_ms\\": %f, \\"p99_ms\\": %f, "
    .. "\\"non2xx\\": %d, \\"errors\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    s.status, s.connect + s.read + s.write + s.timeout))
end
"""


GUARDRAILS = {"min_post_ratio_to_healthz": 0.3, "max_post_p99_ms": 50.0}
#: Below this share of its CPU during the baseline the server was not what limited /healthz (a warning).
BASELINE_MIN_BUSY = 0.8


def guardrails(figures: dict) -> dict:
    """The guardrails of one database's figures: each with its value and whether it holds."""
    post = figures["POST /v1/meetings"]
    return {
        "post_ratio_to_healthz": {"value": post["ratio_to_trivial"], "min": GUARDRAILS["min_post_ratio_to_healthz"],
                                  "ok": post["ratio_to_trivial"] >= GUARDRAILS["min_post_ratio_to_healthz"]},
        "post_p99_ms": {"value": post["p99_ms_median"], "max": GUARDRAILS["max_post_p99_ms"],
                        "ok": post["p99_ms_median"] <= GUARDRAILS["max_post_p99_ms"]},
    }


def server_usage(pid: int) -> tuple[float, float, int, int]:
    """CPU seconds (user, system) and context switches (voluntary, involuntary) of process ``pid`` so far,
    summed over its threads (``/proc/<pid>/task/*``; threads that ended are not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = voluntary = involuntary = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        user += int(fields[11])
        system += int(fields[12])
        voluntary += int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
        involuntary += int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
    return user / tick, system / tick, voluntary, involuntary


def wrk(url: str, seconds: int, connections: int, lua: str, load_cpus: str | None = None,
        server_pid: int | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua + REPORT_LUA)
        script = f.name
    pin = ["taskset", "-c", load_cpus] if load_cpus else []
    threads = len(load_cpus.split(",")) if load_cpus else 2
    try:
        before = server_usage(server_pid) if server_pid else None
        started = time.monotonic()
        out = subprocess.run(
            [*pin, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
            capture_output=True, text=True, timeout=seconds + 60,
        ).stdout
        elapsed = time.monotonic() - started
        after = server_usage(server_pid) if server_pid else None
    finally:
        os.unlink(script)
    m = re.search(r"^JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk said: {out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"]
    if before and after and r["requests"]:
        user, system, voluntary, involuntary = (b - a for a, b in zip(before, after))
        r["cpu_us"] = (user + system) / r["requests"] * 1e6
        r["user_us"] = user / r["requests"] * 1e6
        r["sys_us"] = system / r["requests"] * 1e6
        r["cpu_busy"] = (user + system) / elapsed  # of one CPU (the server is pinned to one)
        r["switches"] = (voluntary + involuntary) / r["requests"]
    return r


def bench_database(kind: str, seconds: int, rounds: int, connections: int,
                   server_cpus: str | None = None, load_cpus: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="herewith-bench-"))
    db_url = create_pg_database() if kind == "postgresql" else None
    env = {"HEREWITH_DATA_DIR": str(tmp / "data"), "HEREWITH_LOG_LEVEL": "warning", "HEREWITH_JANUS": "off",
           "HEREWITH_RATELIMIT_ENABLED": "false", "HEREWITH_BACKGROUND_TASKS": "false"}
    if db_url:
        env["HEREWITH_DATABASE_URL"] = db_url
    srv = ProcessServer(env, cpus=server_cpus).start(timeout=180)  # start-up is slow on a loaded machine
    try:
        org = run_sync(create_org_key(Settings(data_dir=tmp / "data", database_url=db_url)))
        mid = httpx.post(srv.base_url + "/v1/meetings", headers=org.headers,
                         json={"endDate": "2099-01-01T00:00:00Z"}).json()["meetingId"]
        scenarios = {
            "trivial GET /healthz": (srv.base_url + "/healthz", ""),
            "POST /v1/meetings": (srv.base_url + "/v1/meetings", POST_LUA % org.api_key),
            "GET /v1/meetings/{id}": (f"{srv.base_url}/v1/meetings/{mid}", GET_LUA % org.api_key),
        }
        # Warm-up, each scenario: the first POSTs and GETs at full concurrency open the pools' connections
        # (on PostgreSQL 20 + 8 of them, each a few ms of the server's CPU), which the rounds must not count.
        for url, lua in scenarios.values():
            wrk(url, 2, connections, lua, load_cpus)
        runs: dict[str, list[dict]] = {name: [] for name in scenarios}
        for _ in range(rounds):
            for name, (url, lua) in scenarios.items():
                runs[name].append(wrk(url, seconds, connections, lua, load_cpus, srv.proc.pid))
        result = {}
        base = statistics.median(r["rps"] for r in runs["trivial GET /healthz"])
        base_cpu = statistics.median(r["cpu_us"] for r in runs["trivial GET /healthz"])
        for name, rs in runs.items():
            cpu = statistics.median(r["cpu_us"] for r in rs)
            rps = statistics.median(r["rps"] for r in rs)
            result[name] = {
                "rps_median": round(rps, 1),
                "p50_ms_median": round(statistics.median(r["p50_ms"] for r in rs), 2),
                "p99_ms_median": round(statistics.median(r["p99_ms"] for r in rs), 2),
                "ratio_to_trivial": round(rps / base, 3),
                # each round against the trivial endpoint's of the same round (seconds apart), then the median
                "paired_ratio_median": round(statistics.median(
                    r["rps"] / t["rps"] for r, t in zip(rs, runs["trivial GET /healthz"])), 3),
                # the server's CPU time per request (user + system, all threads) and its ratio to the baseline's:
                # the throughput ratio is about its inverse when the server uses its whole CPU (cpu_busy ~1)
                "server_cpu_us_per_request_median": round(cpu),
                "server_user_us_per_request_median": round(statistics.median(r["user_us"] for r in rs)),
                "server_sys_us_per_request_median": round(statistics.median(r["sys_us"] for r in rs)),
                "server_cpu_ratio_to_trivial": round(cpu / base_cpu, 2),
                "server_cpu_busy_median": round(statistics.median(r["cpu_busy"] for r in rs), 2),
                "server_context_switches_per_request_median": round(statistics.median(r["switches"] for r in rs), 2),
                "non2xx": sum(r["non2xx"] for r in rs),
                "socket_errors": sum(r["errors"] for r in rs),
                "rounds_rps": [round(r["rps"], 1) for r in rs],
            }
        return result
    finally:
        srv.stop()
        if db_url:
            drop_pg_database(db_url)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--no-pin", action="store_true", help="don't pin the server and wrk to separate CPUs")
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    server_cpus = load_cpus = None
    if ncpu >= 2 and not args.no_pin:
        # The server on CPU 0, wrk on the others: the load generator must not take the server's CPU, and a
        # server that migrates between cores under the load generator's threads measured 20-50 % more CPU
        # per request (the same as bench/ratelimit.py does).
        server_cpus, load_cpus = "0", ",".join(str(c) for c in range(1, ncpu))
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    results = {
        "benchmark": "api",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {"tool": f"wrk -t{len(load_cpus.split(',')) if load_cpus else 2}", "connections": args.connections,
                 "seconds": args.seconds, "rounds": args.rounds, "server_cpus": server_cpus, "load_cpus": load_cpus},
        "databases": {},
    }
    results["load_average"] = {}
    for kind in [d for d in args.databases.split(",") if d]:
        t0 = time.monotonic()
        before = os.getloadavg()[0]
        results["databases"][kind] = bench_database(kind, args.seconds, args.rounds, args.connections,
                                                    server_cpus, load_cpus)
        # the 1-minute load average before and after: other jobs on the machine move the figures
        results["load_average"][kind] = [round(before, 2), round(os.getloadavg()[0], 2)]
        print(f"== {kind} ({time.monotonic() - t0:.0f}s, load average {before:.1f} -> {os.getloadavg()[0]:.1f})")
        for name, r in results["databases"][kind].items():
            print(f"  {name:24} {r['rps_median']:8.1f} req/s  p50 {r['p50_ms_median']:7.2f} ms  "
                  f"p99 {r['p99_ms_median']:7.2f} ms  x{r['ratio_to_trivial']:.2f} of trivial "
                  f"(paired x{r['paired_ratio_median']:.2f})  non2xx={r['non2xx']}")
            print(f"  {'':24} server CPU {r['server_cpu_us_per_request_median']:6d} us/request "
                  f"(user {r['server_user_us_per_request_median']}, sys {r['server_sys_us_per_request_median']}; "
                  f"x{r['server_cpu_ratio_to_trivial']:.2f} of trivial), busy {r['server_cpu_busy_median']:.0%}, "
                  f"{r['server_context_switches_per_request_median']:.1f} context switches/request")
    for kind, figures in results["databases"].items():
        busy = figures["trivial GET /healthz"]["server_cpu_busy_median"]
        if busy < BASELINE_MIN_BUSY:
            # The baseline did not use the server's CPU: wrk or the machine held it back, so the req/s ratios
            # are not the server's (compare server_cpu_ratio_to_trivial instead).
            results.setdefault("warnings", []).append(f"{kind}: baseline not CPU-bound (server busy {busy:.0%})")
            print(f"warning: {kind}: the server was busy {busy:.0%} during GET /healthz, not CPU-bound: "
                  "the req/s ratios of this run say more about the machine than the server")
    results["guardrails"] = {kind: guardrails(figures) for kind, figures in results["databases"].items()}
    failed = [f"{kind} {name} {g['value']}" for kind, checks in results["guardrails"].items()
              for name, g in checks.items() if not g["ok"]]
    print("guardrails: " + ("all hold" if not failed else "FAILED: " + ", ".join(failed)))
    out = ROOT / "bench" / "results" / "api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
