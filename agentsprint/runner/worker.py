"""`agentsprint worker`: serve the run queue; recover the items of workers whose heartbeat stopped."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from agentsprint.config import Settings
from agentsprint.money import plural
from agentsprint.runner import durable
from agentsprint.runner.runtime import build_runtime, current, new_executor_id
from agentsprint.store import workers

if TYPE_CHECKING:
    from agentsprint.store import Store

HEARTBEAT_SECONDS = 1.0
STALE_SECONDS = 6.0
DRAIN_SECONDS = 20.0
THREAD_EXIT_SECONDS = 0.5
NOTIFY_RESUME_SECONDS = 60.0  # how often a worker looks for webhooks that dead processes left

log = logging.getLogger(__name__)
FINAL = ("done", "awaiting_review", "escalated", "failed", "stopped", "dropped")


class WorkerLog:
    """What a worker tells the person who started it: a start line, a line per item it ends, a summary."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.ended: dict[str, str] = {}
        self.rounds: dict[str, int] = {}
        self._lock = threading.Lock()

    def progress(self, item_id: str, data: dict[str, object]) -> None:
        """The runtime's progress sink: one line when an item reaches a final status."""
        round_no = data.get("round")
        if isinstance(round_no, int):
            self.rounds[item_id] = round_no
        status = str(data.get("status") or "")
        if item_id and status.split(" ")[0] in FINAL:
            with self._lock:
                self.ended[item_id] = status
            note = f", {data['reason']}" if data.get("reason") else ""
            self._say(f"{item_id}: {status} (round {self.rounds.get(item_id, 0)}{note})")

    def started(self, executor_id: str, parallel: int, idle_exit: float) -> None:
        until = f"; exits after {idle_exit:g} s idle" if idle_exit > 0 else "; Ctrl-C or SIGTERM stops it"
        self._say(f"worker {executor_id} serving the queue, {parallel} item(s) at once{until}")

    def summary(self, executor_id: str) -> None:
        counts = Counter(status for status in self.ended.values())
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        self._say(f"worker {executor_id} stopped: {plural(len(self.ended), 'item')} ended here"
                  + (f" ({detail})" if detail else ""))

    def _say(self, line: str) -> None:
        with self._lock:
            self.write(line)
            sys.stdout.flush()


class Heartbeat(threading.Thread):
    """Beats for this process and hands the pending workflows of dead workers back to the queue."""

    def __init__(self, executor_id: str) -> None:
        super().__init__(name="agentsprint-heartbeat", daemon=True)
        self.executor_id = executor_id
        self.stopping = threading.Event()
        self.recovering = True
        self.recovered: list[str] = []

    def run(self) -> None:
        store = current().store
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                workers.heartbeat(store, self.executor_id)
                if self.recovering:
                    self.recover(store)
            except Exception:  # a missed beat is retried next second; never kill the worker
                log.debug("heartbeat failed", exc_info=True)

    def recover(self, store: Store) -> None:
        """Re-enqueue dead workers' PENDING workflows, then mark them recovered.

        Re-enqueueing first and marking after leaves no gap if this worker dies in between: re-enqueueing
        is idempotent (one live worker dequeues each workflow), so a second recoverer does no harm.
        """
        for dead in workers.stale_workers(store, self.executor_id, STALE_SECONDS):
            durable.recover([dead])
            if workers.mark_recovered(store, dead, self.executor_id):
                self.recovered.append(dead)


def start_heartbeat(executor_id: str) -> Heartbeat:
    workers.register(current().store, executor_id)
    beat = Heartbeat(executor_id)
    beat.start()
    return beat


def _launch(settings: Settings, executor_id: str, parallel: int | None) -> None:
    """Register the item workflow and start serving the queue."""
    from agentsprint.runner import flow  # noqa: F401  (registers the workflow and its steps)

    durable.launch(settings, executor_id=executor_id, parallel=parallel)


def _on_signal(stopping: threading.Event) -> None:
    """First SIGTERM/SIGINT: drain and exit; a second one: exit at once (the items stay recoverable)."""
    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            os._exit(128 + signum)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)


def serve(settings: Settings, *, parallel: int | None = None, idle_exit: float = 0.0,
          drain: float = DRAIN_SECONDS, report: WorkerLog | None = None) -> None:
    """Run queued items until SIGTERM/SIGINT (or `idle_exit` seconds without queued work)."""
    from agentsprint.sandbox import preflight

    preflight(settings, [])  # a worker may be handed any item: refuse to start without a working sandbox
    executor_id = new_executor_id()
    report = report or WorkerLog()
    build_runtime(settings, executor_id=executor_id, progress=report.progress)
    _launch(settings, executor_id, parallel)
    beat = start_heartbeat(executor_id)
    report.started(executor_id, parallel or settings.run.parallel, idle_exit)
    stopping = threading.Event()
    _on_signal(stopping)
    idle_since = resumed_at = time.monotonic()
    _resume_notifications(settings)
    try:
        while not stopping.wait(0.5):
            if time.monotonic() - resumed_at > NOTIFY_RESUME_SECONDS:
                resumed_at = time.monotonic()
                _resume_notifications(settings)
            if idle_exit <= 0:
                continue
            if durable.any_active():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit:
                break
    finally:
        stop(beat, drain, report)


def stop(beat: Heartbeat, drain: float, report: WorkerLog | None = None) -> None:
    """Stop dequeuing, let running items finish for up to `drain` seconds, then leave.

    Items still running after the drain are abandoned with the process (`os._exit`), and the heartbeat
    goes on until then: no live worker may recover them while a step of theirs could still run here.
    """
    beat.recovering = False
    durable.shutdown(drain_seconds=drain)
    store = current().store
    busy = _busy_threads()
    if busy:
        workers.retire(store, beat.executor_id, handover=False)
        _flush_notifications()
        log.warning("worker %s left %d running item(s) to recovery", beat.executor_id, len(busy))
        if report is not None:
            report.summary(beat.executor_id)
        logging.shutdown()
        os._exit(0)
    beat.stopping.set()
    beat.join(timeout=HEARTBEAT_SECONDS * 2)
    workers.retire(store, beat.executor_id, handover=True)
    _flush_notifications()
    store.close()
    if report is not None:
        report.summary(beat.executor_id)


def _busy_threads() -> list[threading.Thread]:
    """DBOS executor threads still running after DBOS shut down: workflows that did not finish draining."""
    deadline = time.monotonic() + THREAD_EXIT_SECONDS
    others = [t for t in threading.enumerate() if t.name.startswith(durable.EXECUTOR_THREAD_PREFIX)]
    for thread in others:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [t for t in others if t.is_alive()]


def _resume_notifications(settings: Settings) -> None:
    """Send the outbox's deliveries that dead processes left (never raises)."""
    from agentsprint import notify

    notify.resume(settings, current().store)


def _flush_notifications() -> None:
    from agentsprint import notify

    notify.flush()
