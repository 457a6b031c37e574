"""`agentsprint worker`: serve the run queue; recover the items of workers whose heartbeat stopped."""

from __future__ import annotations

import signal
import threading
import time

from agentsprint.config import Settings
from agentsprint.runner import runtime as rt_mod
from agentsprint.store import workers

HEARTBEAT_SECONDS = 1.0
STALE_SECONDS = 6.0


class Heartbeat(threading.Thread):
    """Beats for this process and hands the pending workflows of dead workers back to the queue."""

    def __init__(self, executor_id: str) -> None:
        super().__init__(name="agentsprint-heartbeat", daemon=True)
        self.executor_id = executor_id
        self.stopping = threading.Event()
        self.recovered: list[str] = []

    def run(self) -> None:
        from dbos import DBOS

        store = rt_mod.current().store
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                workers.heartbeat(store, self.executor_id)
                dead = workers.claim_dead(store, self.executor_id, STALE_SECONDS)
                if dead:
                    DBOS._recover_pending_workflows(dead)
                    self.recovered.extend(dead)
            except Exception:  # a missed beat is retried next second; never kill the worker
                continue


def start_heartbeat(executor_id: str) -> Heartbeat:
    workers.register(rt_mod.current().store, executor_id)
    beat = Heartbeat(executor_id)
    beat.start()
    return beat


def _queue_busy() -> bool:
    from dbos import DBOS

    active = DBOS.list_workflows(status=["PENDING", "ENQUEUED"], load_input=False, load_output=False)
    return bool(active)


def serve(settings: Settings, *, parallel: int | None = None, idle_exit: float = 0.0) -> None:
    """Run queued items until SIGTERM/SIGINT (or `idle_exit` seconds without queued work)."""
    executor_id = rt_mod.new_executor_id()
    rt_mod.build_runtime(settings, executor_id=executor_id)
    rt_mod.launch(settings, executor_id=executor_id, parallel=parallel)
    beat = start_heartbeat(executor_id)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    idle_since = time.monotonic()
    try:
        while not stopping.wait(0.5):
            if idle_exit <= 0:
                continue
            if _queue_busy():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit:
                break
    finally:
        beat.stopping.set()
        workers.retire(rt_mod.current().store, executor_id)
        rt_mod.shutdown()
