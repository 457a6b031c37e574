"""The shared rate limiter: pacing and cooldowns seen by every caller of one endpoint+model."""

from __future__ import annotations

import threading
import time

from agentsprint.llm.ratelimit import RateLimiter, limiter_for


class FakeClock:
    """A clock that advances only when someone sleeps (deterministic pacing checks)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_requests_per_minute_spaces_calls() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock.time, sleep=lambda s: None)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 1.0, 2.0, 3.0]


def test_a_rate_limit_pauses_every_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    limiter.penalize(5.0)
    assert limiter.acquire() == 5.0
    assert limiter.acquire() == 0.0, "the cooldown is over for later callers"


def test_threads_share_one_limiter_per_endpoint_and_model() -> None:
    limiter = limiter_for("http://127.0.0.1:1/v1", "m-shared", requests_per_minute=600)  # 0.1 s apart
    assert limiter is limiter_for("http://127.0.0.1:1/v1", "m-shared")
    assert limiter is not limiter_for("http://127.0.0.1:1/v1", "other")
    started: list[float] = []

    def call() -> None:
        limiter.acquire()
        started.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    started.sort()
    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    assert len(started) == 5 and min(gaps) >= 0.09
