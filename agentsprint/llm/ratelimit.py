"""One rate limiter per provider endpoint and model, shared by every agent of the process.

A 429 seen by one agent pauses all of them for the backoff instead of each hammering the provider
on its own schedule; an optional `requests_per_minute` spaces calls out before the provider has to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Paces calls to one endpoint+model and holds every caller during a rate-limit cooldown."""

    def __init__(self, requests_per_minute: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._cooldown_until = 0.0

    def acquire(self) -> float:
        """Wait for this caller's turn; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_slot, self._cooldown_until)
            self._next_slot = start + self.interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return max(0.0, wait)

    def penalize(self, seconds: float) -> None:
        """A rate limit was hit: nobody calls this endpoint+model for `seconds`."""
        with self._lock:
            self._cooldown_until = max(self._cooldown_until, self._clock() + seconds)


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter_for(api_base: str | None, model: str, requests_per_minute: float | None = None) -> RateLimiter:
    """The process's limiter for `model` at `api_base` (created on first use)."""
    key = (api_base or "", model)
    with _REGISTRY_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(requests_per_minute)
        return _LIMITERS[key]
