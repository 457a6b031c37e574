"""`agentsprint run` holds the project's run lock for as long as it executes items, beating meanwhile."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from agentsprint.config import Settings
from agentsprint.store import runlock

if TYPE_CHECKING:
    from agentsprint.store import Store

HEARTBEAT_SECONDS = 5.0

log = logging.getLogger(__name__)


@contextlib.contextmanager
def one_run(settings: Settings) -> Iterator[None]:
    """Hold the run lock around the block; RunLocked (naming the holder) when another run lives."""
    from agentsprint.store import Store

    store = Store(settings.database_url)
    try:
        token = runlock.acquire(store)
        stopping = threading.Event()
        beat = threading.Thread(target=_beat, args=(store, token, stopping), name="agentsprint-run-lock",
                                daemon=True)
        beat.start()
        try:
            yield
        finally:
            stopping.set()
            beat.join(timeout=HEARTBEAT_SECONDS)
            runlock.release(store, token)
    finally:
        store.close()


def _beat(store: Store, token: str, stopping: threading.Event) -> None:
    while not stopping.wait(HEARTBEAT_SECONDS):
        try:
            runlock.beat(store, token)
        except Exception:  # a missed beat is retried; the lock is only taken over after STALE_SECONDS
            log.debug("run lock heartbeat failed", exc_info=True)
