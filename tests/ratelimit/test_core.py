"""The sliding-log rule on both backends (in-process and real Redis), driven by a controllable clock.

Covers CONTRACT.md "Rate limiting" and issue 4: the grow plan's four examples within one minute, the
next request throttled with correct remaining/reset/msLeft, re-admission once the window has moved, and
randomized sequences checked against a brute-force sliding-window counter.
"""

from __future__ import annotations

import math
import random

import pytest

from herewith.ratelimit import (
    Decision,
    ManualClock,
    MemoryBackend,
    RateLimiter,
    budget_for,
    cost_of,
)

T0 = 1_700_000_000.0  # the start of the `clock` fixture (conftest.py)

KEY = "organization:org_test"
GROW = budget_for("grow")


def test_costs_and_budgets():
    assert [cost_of(m) for m in ("GET", "HEAD", "DELETE", "POST", "PUT", "PATCH")] == [1, 1, 2, 3, 3, 3]
    assert cost_of("get") == 1
    assert budget_for("grow") == 1000
    assert budget_for("build") == 100
    assert budget_for(None) == 1000
    assert budget_for("build", 42) == 42


async def _send(limiter: RateLimiter, clock: ManualClock, methods: list[str], step: float) -> list[Decision]:
    out = []
    for m in methods:
        out.append(await limiter.hit(KEY, cost_of(m), GROW))
        clock.advance(step)
    return out


CONTRACT_EXAMPLES = {
    "1000 GET": ["GET"] * 1000,
    "500 DELETE": ["DELETE"] * 500,
    "333 POST": ["POST"] * 333,
    "200 DELETE + 100 POST + 300 GET": ["DELETE"] * 200 + ["POST"] * 100 + ["GET"] * 300,
}


@pytest.mark.parametrize("example", list(CONTRACT_EXAMPLES))
async def test_contract_examples_within_one_minute(limiter, clock, example):
    methods = CONTRACT_EXAMPLES[example]
    step = 0.025  # the whole burst takes at most 25 s: "within one minute"
    decisions = await _send(limiter, clock, methods, step)
    assert all(d.allowed for d in decisions)
    used = 0
    for m, d in zip(methods, decisions):
        used += cost_of(m)
        assert d.limit == 1000
        assert d.remaining == 1000 - used
        assert d.retry_after_ms == 0
    last_t = T0 + step * (len(methods) - 1)
    assert decisions[-1].reset == pytest.approx(last_t + 60)

    # The next request of the same kind is throttled: it needs points only the first entries can free.
    now = clock()
    nxt = await limiter.hit(KEY, cost_of(methods[-1]), GROW)
    assert not nxt.allowed
    assert nxt.remaining == 1000 - used
    assert nxt.reset == pytest.approx(last_t + 60)
    # msLeft: until the oldest entries (enough of them) leave the window.
    need = used + cost_of(methods[-1]) - 1000
    freed, i = 0, 0
    while freed < need:
        freed += cost_of(methods[i])
        i += 1
    expected_ms = math.ceil(round((T0 + step * (i - 1) + 60 - now) * 1e6) / 1000)
    assert nxt.retry_after_ms == expected_ms
    assert nxt.retry_after_seconds == math.ceil(expected_ms / 1000)

    # A throttled request costs nothing: asking again a little later changes nothing but the wait.
    clock.advance(1.0)
    again = await limiter.hit(KEY, cost_of(methods[-1]), GROW)
    assert not again.allowed and again.remaining == nxt.remaining
    assert again.retry_after_ms == expected_ms - 1000

    # One millisecond before msLeft has passed: still throttled; at msLeft: admitted again.
    clock.set(now + (expected_ms - 1) / 1000)
    assert not (await limiter.hit(KEY, cost_of(methods[-1]), GROW)).allowed
    clock.set(now + expected_ms / 1000)
    ok = await limiter.hit(KEY, cost_of(methods[-1]), GROW)
    assert ok.allowed

    # Once a full window has passed since the burst, the whole budget is back.
    clock.set(last_t + 60 + 0.001)
    fresh = await limiter.hit(KEY, 1, GROW)
    assert fresh.allowed and fresh.remaining == 1000 - 1 - cost_of(methods[-1])
    clock.set(last_t + 120.1)
    assert (await limiter.hit(KEY, 1, GROW)).remaining == 999


async def test_333_post_then_one_point_left(limiter, clock):
    await _send(limiter, clock, ["POST"] * 333, 0.001)
    post = await limiter.hit(KEY, 3, GROW)
    assert not post.allowed and post.remaining == 1
    # The point that is left is still usable by a GET: throttled requests charged nothing.
    get = await limiter.hit(KEY, 1, GROW)
    assert get.allowed and get.remaining == 0
    assert not (await limiter.hit(KEY, 1, GROW)).allowed


async def test_burst_at_one_instant_and_exact_msleft(limiter, clock):
    for _ in range(1000):
        assert (await limiter.hit(KEY, 1, GROW)).allowed
    d = await limiter.hit(KEY, 1, GROW)
    assert not d.allowed
    assert d.retry_after_ms == 60_000 and d.retry_after_seconds == 60
    assert d.reset == T0 + 60
    clock.advance(59.999)
    assert not (await limiter.hit(KEY, 1, GROW)).allowed
    clock.advance(0.001)
    d = await limiter.hit(KEY, 1, GROW)
    assert d.allowed and d.remaining == 999  # all 1000 left together


async def test_no_double_burst_at_a_boundary(limiter, clock):
    """Fixed buckets would admit 2x around a minute boundary; the sliding log admits nothing more."""
    clock.set(T0 + 59.9)
    for _ in range(100):
        assert (await limiter.hit(KEY, 1, 100)).allowed
    clock.set(T0 + 60.1)  # a new "minute", 0.2 s later
    assert not (await limiter.hit(KEY, 1, 100)).allowed


async def test_keys_are_independent(limiter, clock):
    for _ in range(100):
        assert (await limiter.hit("organization:a", 1, 100)).allowed
    assert not (await limiter.hit("organization:a", 1, 100)).allowed
    assert (await limiter.hit("organization:b", 1, 100)).allowed


async def test_request_costing_more_than_budget_is_never_admitted(limiter, clock):
    d = await limiter.hit(KEY, 3, 2)
    assert not d.allowed and d.retry_after_ms == 60_000 and d.remaining == 2


async def test_lowered_budget_applies_at_once(limiter, clock):
    for _ in range(50):
        await limiter.hit(KEY, 1, 1000)
    d = await limiter.hit(KEY, 1, 10)  # e.g. `herewith orgs set-limit --points 10`
    assert not d.allowed and d.limit == 10 and d.remaining == 0


async def test_reset_forgets(limiter, clock):
    for _ in range(10):
        await limiter.hit(KEY, 1, 10)
    await limiter.reset(KEY)
    assert (await limiter.hit(KEY, 1, 10)).remaining == 9


class SlidingWindowReference:
    """Brute force: keeps every admitted (t, cost) forever and sums the window on each call."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self.admitted: list[tuple[int, int]] = []

    def used(self, now_us: int) -> int:
        return sum(c for t, c in self.admitted if now_us - self.window_us < t <= now_us)

    def hit(self, now_us: int, cost: int, limit: int) -> tuple[bool, int, int]:
        used = self.used(now_us)
        if used + cost <= limit:
            self.admitted.append((now_us, cost))
            return True, used + cost, 0
        # the least wait: try every moment an entry leaves the window
        for t, _ in sorted(self.admitted):
            at = t + self.window_us
            if at > now_us and cost <= limit and self._fits_after(at, cost, limit):
                return False, used, at - now_us
        return False, used, self.window_us

    def _fits_after(self, at: int, cost: int, limit: int) -> bool:
        # entries admitted up to now (none after now) that are still in the window at `at`
        return sum(c for t, c in self.admitted if at - self.window_us < t) + cost <= limit

    def max_window_points(self) -> int:
        """The most points admitted in any half-open interval [a, a + window)."""
        ts = sorted(self.admitted)
        best = 0
        for i, (a, _) in enumerate(ts):
            s = sum(c for t, c in ts[i:] if t < a + self.window_us)
            best = max(best, s)
        return best


@pytest.mark.parametrize("seed", range(6))
async def test_randomized_sequences_match_brute_force(backend, seed):
    """No 60 s window ever admits more than the budget, and every decision equals the exact
    sliding-window answer (so the limiter never admits less than it may, either)."""
    rng = random.Random(seed)
    clock = ManualClock(T0 + seed * 1000)
    window = 60.0
    limiter = RateLimiter(backend, window_seconds=window, clock=clock)
    ref = SlidingWindowReference(int(window * 1e6))
    limit = rng.choice([7, 20, 100])
    key = f"organization:rand{seed}"
    admitted_points = 0
    for _ in range(600):
        # mostly tight bursts, sometimes long gaps (including exactly a window)
        clock.advance(rng.choice([0, 0.001, 0.05, 0.5, 1.7, 13.0, 59.999, 60.0, rng.uniform(0, 70)]))
        method = rng.choice(["GET", "GET", "GET", "DELETE", "POST", "PUT", "PATCH"])
        cost = cost_of(method)
        now_us = round(clock() * 1e6)
        d = await limiter.hit(key, cost, limit)
        ok, used, wait_us = ref.hit(now_us, cost, limit)
        assert d.allowed == ok
        assert d.remaining == max(0, limit - used)
        if not ok:
            assert d.retry_after_ms == math.ceil(wait_us / 1000)
        else:
            admitted_points += cost
    assert ref.max_window_points() <= limit
    assert admitted_points > limit  # the sequence really did cross windows


async def test_memory_backend_uses_process_clock_without_injected_clock():
    limiter = RateLimiter(MemoryBackend(), window_seconds=60)
    d = await limiter.hit(KEY, 3, 10)
    assert d.allowed and d.remaining == 7
    import time

    assert abs(d.reset - (time.time() + 60)) < 5
