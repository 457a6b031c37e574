"""DBOS costs the runner pays: a recorded step, a queue of workflows, the enqueue-to-start latency.

    python benchmarks/dbos_steps.py        # SQLite; PostgreSQL too when AGENTSPRINT_TEST_PG_URL is set
    python benchmarks/dbos_steps.py --small  # CI: fewer samples, results not written

Each backend gets a fresh system database (a temporary SQLite file, or a new PostgreSQL database that
is dropped afterwards). Results go to benchmarks/results/dbos_steps.json.

Bounds, checked at both sizes on every backend (exit 1 when one is missed), each against a figure of
the same run so a loaded machine moves both sides:
- the queue runs its workflows side by side: wall time <= QUEUE_RATIO_MAX x the same steps in sequence
  (ideal: workflows / concurrency rounded up, over workflows: 0.25 at --small, 0.5 at full size);
- a recorded step is cheap next to the shortest step the runner records: a no-op step costs
  <= STEP_SHARE_MAX of one queue step's measured wall time (300 ms of sleep plus its own recording);
- a client enqueue starts within the queue's polling, not DBOS's one-second queue rescan (what an
  undeclared queue cost): median latency <= LATENCY_SHARE_MAX of the measured queue step.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSClient, EnqueueOptions

ROOT = Path(__file__).resolve().parent.parent
NOOP_STEPS = 500
QUEUE_WORKFLOWS, QUEUE_STEPS, STEP_SECONDS, CONCURRENCY = 16, 6, 0.3, 8
LATENCY_SAMPLES = 20
QUEUE = "bench-queue"
QUEUE_RATIO_MAX = 0.75
STEP_SHARE_MAX = 0.2
LATENCY_SHARE_MAX = 1.0


@DBOS.step()
def noop_step(n: int) -> int:
    return n


@DBOS.workflow()
def noop_workflow(steps: int) -> int:
    return sum(noop_step(n) for n in range(steps))


@DBOS.step()
def sleep_step(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@DBOS.workflow()
def sleepy_workflow(steps: int, seconds: float) -> float:
    return sum(sleep_step(seconds) for _ in range(steps))


@DBOS.workflow()
def stamp_workflow() -> float:
    return time.time()


@contextmanager
def postgres(base: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    url, name = make_url(base), f"bench_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def launched(system_url: str) -> Iterator[None]:
    DBOS(config={"name": "bench", "system_database_url": system_url, "log_level": "WARNING",  # type: ignore[typeddict-item]
                 "application_version": "bench-1", "executor_id": "bench"})
    DBOS.launch()
    DBOS.register_queue(QUEUE, worker_concurrency=CONCURRENCY, polling_interval_sec=0.05)
    try:
        yield
    finally:
        DBOS.destroy(destroy_registry=False)


def step_cost_ms() -> float:
    """Wall time of one recorded no-op step, from a workflow of NOOP_STEPS of them."""
    started = time.perf_counter()
    noop_workflow(NOOP_STEPS)
    return (time.perf_counter() - started) / NOOP_STEPS * 1000


def queue_seconds() -> dict[str, float]:
    """QUEUE_WORKFLOWS workflows of QUEUE_STEPS sleeping steps on a queue of CONCURRENCY."""
    queue = DBOS.retrieve_queue(QUEUE)
    assert queue is not None
    started = time.perf_counter()
    handles = [queue.enqueue(sleepy_workflow, QUEUE_STEPS, STEP_SECONDS) for _ in range(QUEUE_WORKFLOWS)]
    for handle in handles:
        handle.get_result()
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2),
            "in_sequence_seconds": round(QUEUE_WORKFLOWS * QUEUE_STEPS * STEP_SECONDS, 1),
            "step_ms_measured": round(_step_wall_ms(), 1)}


def _step_wall_ms() -> float:
    """Wall time of one sleeping step as the workflows saw it: one workflow of QUEUE_STEPS, alone."""
    started = time.perf_counter()
    sleepy_workflow(QUEUE_STEPS, STEP_SECONDS)
    return (time.perf_counter() - started) / QUEUE_STEPS * 1000


def start_latency_ms(system_url: str) -> dict[str, float]:
    """From a DBOSClient enqueue (what `run --submit` does) to the workflow's first line running."""
    client = DBOSClient(system_database_url=system_url, application_name="bench")
    samples = []
    try:
        for _ in range(LATENCY_SAMPLES):
            options: EnqueueOptions = {"workflow_name": "stamp_workflow", "queue_name": QUEUE,
                                       "app_version": "bench-1"}
            sent = time.time()
            started: float = client.enqueue(options).get_result(polling_interval_sec=0.01)
            samples.append((started - sent) * 1000)
    finally:
        client.destroy()
    return {"median": round(statistics.median(samples), 1), "max": round(max(samples), 1)}


def measure(system_url: str) -> dict[str, Any]:
    with launched(system_url):
        step_cost_ms()  # warm-up: connections, prepared tables
        return {"recorded_noop_step_ms": round(statistics.median(step_cost_ms() for _ in range(3)), 2),
                "queue": queue_seconds(), "enqueue_to_start_ms": start_latency_ms(system_url)}


def missed_bounds(figures: dict[str, Any]) -> list[str]:
    """The bounds one backend's figures miss, each said with its numbers."""
    queue, step_ms = figures["queue"], figures["queue"]["step_ms_measured"]
    checks = [
        ("queue wall time / in sequence", queue["seconds"] / queue["in_sequence_seconds"], QUEUE_RATIO_MAX),
        ("recorded no-op step / a queue step", figures["recorded_noop_step_ms"] / step_ms, STEP_SHARE_MAX),
        ("enqueue-to-start median / a queue step", figures["enqueue_to_start_ms"]["median"] / step_ms,
         LATENCY_SHARE_MAX),
    ]
    return [f"{name} = {value:.3f} > {bound}" for name, value, bound in checks if value > bound]


def main() -> int:
    import argparse

    import dbos

    global NOOP_STEPS, QUEUE_WORKFLOWS, LATENCY_SAMPLES
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer samples and workflows; results not written")
    small = parser.parse_args().small
    if small:
        NOOP_STEPS, QUEUE_WORKFLOWS, LATENCY_SAMPLES = 100, 4, 5

    results: dict[str, Any] = {
        "command": "python benchmarks/dbos_steps.py",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2),
                    "dbos": getattr(dbos, "__version__", "3.4")},
        "setup": {"noop_steps": NOOP_STEPS, "queue_workflows": QUEUE_WORKFLOWS, "queue_steps": QUEUE_STEPS,
                  "step_seconds": STEP_SECONDS, "worker_concurrency": CONCURRENCY},
        "bounds": {"queue_ratio_max": QUEUE_RATIO_MAX, "noop_step_share_max": STEP_SHARE_MAX,
                   "enqueue_latency_share_max": LATENCY_SHARE_MAX},
    }
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = measure(f"sqlite:///{Path(folder) / 'dbos.sqlite'}")
    base = os.environ.get("AGENTSPRINT_TEST_PG_URL")
    if base:
        with postgres(base) as url:
            results["postgres"] = measure(url)
    if not small:
        out = ROOT / "benchmarks" / "results" / "dbos_steps.json"
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    missed = [f"{backend}: {m}" for backend in ("sqlite", "postgres") if backend in results
              for m in missed_bounds(results[backend])]
    for line in missed:
        print(f"bound missed: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
