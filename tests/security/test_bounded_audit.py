"""Concurrent writers never break the audit chain: 8 threads and 2 processes append to one SQLite store
at once (each event in its own transaction, as the runner's steps do), then the chain verifies."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from agentsprint.store import Store
from agentsprint.store.events import append_event, verify_chain

THREADS, PROCESSES = 8, 2
PER_THREAD, PER_PROCESS = 40, 80

CHILD = """
import sys, time
from agentsprint.store import Store
from agentsprint.store.events import append_event
url, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
store = Store(url)
time.sleep(max(0.0, start_at - time.time()))
for n in range(count):
    with store.session() as session:
        append_event(session, "note", actor=name, data={"n": n, "pad": "x" * (n % 7) * 100})
"""


def append_many(store: Store, name: str, count: int, start: threading.Barrier) -> None:
    start.wait()
    for n in range(count):
        with store.session() as session:
            append_event(session, "note", actor=name, data={"n": n, "text": f"{name} \u00e9v\u00e9nement {n}"})


def test_eight_threads_and_two_processes_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agentsprint.db'}"
    store = Store(url)
    start_at = time.time() + 3.0  # the children import and open the store first
    children = [subprocess.Popen([sys.executable, "-c", CHILD, url, f"process-{p}", str(PER_PROCESS), str(start_at)])
                for p in range(PROCESSES)]
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=append_many, args=(store, f"thread-{t}", PER_THREAD, barrier))
               for t in range(THREADS)]
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(child.wait(timeout=120) == 0 for child in children)

    total = THREADS * PER_THREAD + PROCESSES * PER_PROCESS
    with store.session() as session:
        assert verify_chain(session) == (total, None, None)
        actors = dict(session.execute(text("SELECT actor, COUNT(*) FROM events GROUP BY actor")).all())
        writers = session.execute(text(
            "SELECT COUNT(*) FROM events e JOIN events p ON p.id = e.id - 1 WHERE e.actor != p.actor")).scalar()
        forks = session.execute(text("SELECT COUNT(*) - COUNT(DISTINCT prev_hash) FROM events")).scalar()
    assert actors == {**{f"thread-{t}": PER_THREAD for t in range(THREADS)},
                      **{f"process-{p}": PER_PROCESS for p in range(PROCESSES)}}
    assert writers and writers > THREADS, "the writers really interleaved"
    assert forks == 0, "two events claim the same predecessor"
    store.close()
