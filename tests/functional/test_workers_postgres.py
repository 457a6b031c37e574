"""Three `agentsprint worker` processes share one PostgreSQL database; one is SIGKILLed mid-item.

Every item still ends done or awaiting_review, no model call is paid twice, the dead worker's items are
recovered by a live one, and no item ever runs on two workers at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_url
from runner_support import TEST_CONFIG, item, make_project
from sqlalchemy import text
from worker_support import fresh_database, logs, slow_responders, start_worker, stop_all, wait_for

from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import ScriptBook
from agentsprint.runner.submission import submit_items
from agentsprint.store import Store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ITEMS = [f"AS-{n}" for n in range(1, 7)]
LATENCY = 0.5  # every model reply: keeps items in flight long enough to kill a worker mid-item
CALLS_PER_ITEM = Counter({"supervisor": 1, "coder": 4, "qa": 1})


def _coder(n: int) -> list[Any]:
    return [tool_call("write_file", path=f"shop/feature_{n}.py", content=f"FEATURE = {n}\n"),
            tool_call("list_files", path="shop"),
            tool_call("read_file", path=f"shop/feature_{n}.py"),
            tool_call("finish", summary=f"added shop/feature_{n}.py")]


def _items() -> list[Any]:
    """Even items wait for a human, odd ones merge: both end states, no merge conflicts."""
    return [item(f"AS-{n}", scope=[f"shop/feature_{n}.py"],
                 dod=["secrets", {"review": "human"}] if n % 2 == 0 else ["secrets"]) for n in range(1, 7)]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(postgres_url()) as url:
        yield url


def rows(store: Store, sql: str, **params: Any) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(sql), params).fetchall())


def _victim(store: Store, procs: dict[int, subprocess.Popen[bytes]]) -> tuple[str, int] | None:
    """A live worker with an item in flight that has already paid for a model call: (executor id, pid)."""
    found = rows(store, """
        SELECT w.executor_id, w.pid FROM workers w
        JOIN events e ON e.kind = 'item.execution' AND e.actor = 'worker:' || w.executor_id
        JOIN item_state s ON s.item_id = e.item_id AND s.status = 'running'
        WHERE (SELECT count(*) FROM model_calls m WHERE m.item_id = e.item_id AND m.outcome = 'ok') >= 2
        LIMIT 1""")
    if found and found[0][1] in procs:
        return found[0][0], found[0][1]
    return None


def _settled(store: Store) -> dict[str, str] | None:
    states = dict(rows(store, "SELECT item_id, status FROM item_state"))
    final = {"done", "awaiting_review", "escalated", "failed"}
    return states if len(states) == len(ITEMS) and set(states.values()) <= final else None


def test_three_workers_one_killed_mid_item_every_item_runs_exactly_once(tmp_path: Path, pg_url: str) -> None:
    url = pg_url
    with ScriptedServer() as server:
        book = ScriptBook({}, {(f"AS-{n}", 1): _coder(n) for n in range(1, 7)})
        config = TEST_CONFIG + f'\n[database]\nurl = "{url}"\n'
        settings = make_project(tmp_path / "p", server, _items(), book, config=config)
        slow_responders(server, book, LATENCY)
        _run_and_check(settings.root, Store(url), tmp_path)


def _run_and_check(root: Path, store: Store, tmp_path: Path) -> None:
    logs_ = [tmp_path / f"worker-{n}.log" for n in range(3)]
    procs = {p.pid: p for p in (start_worker(root, log, "--parallel", "2", "--drain", "2") for log in logs_)}
    try:
        wait_for(lambda: len(rows(store, "SELECT 1 FROM workers")) == 3 or None, 60, "three workers registered")
        from agentsprint.config import load_settings

        started = time.time()
        workflow_ids = submit_items(load_settings(root, environ={}), ITEMS)
        assert sorted(workflow_ids) == sorted(f"{i}:1" for i in ITEMS)
        victim, pid = wait_for(lambda: _victim(store, procs), 60, "an item in flight on a worker")
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        procs[pid].wait(timeout=10)
        states = wait_for(lambda: _settled(store), 120, "every item settled")
        elapsed = time.time() - started
        handover = _check(store, states, victim, killed_at)
        _stop_gracefully([p for p in procs.values() if p.pid != pid])
        print(f"6 items on 3 workers, one killed: running again {handover:.1f} s after the kill, "
              f"all settled {elapsed:.1f} s after submit")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs(logs_)}") from exc
    finally:
        stop_all(list(procs.values()))
        store.close()


def _check(store: Store, states: dict[str, str], victim: str, killed_at: float) -> float:
    """Check the outcome; returns how long after the kill the victim's first item ran again."""
    assert set(states.values()) <= {"done", "awaiting_review"}, states
    assert {i for i, s in states.items() if s == "awaiting_review"} == {"AS-2", "AS-4", "AS-6"}
    _check_paid_once(store)
    return _check_recovery(store, victim, killed_at)


def _check_paid_once(store: Store) -> None:
    """No model call completed twice, and one round event per round."""
    calls = rows(store, "SELECT item_id, role, count(*) FROM model_calls WHERE outcome = 'ok' GROUP BY 1, 2")
    per_item: dict[str, Counter[str]] = {}
    for item_id, role, count in calls:
        per_item.setdefault(item_id, Counter())[role] = count
    assert per_item == {i: CALLS_PER_ITEM for i in ITEMS}
    rounds = dict(rows(store, "SELECT item_id, count(*) FROM events WHERE kind = 'round' GROUP BY 1"))
    assert rounds == {i: 1 for i in ITEMS}
    running = dict(rows(store, "SELECT item_id, count(*) FROM item_transitions WHERE to_status = 'running' "
                               "GROUP BY 1"))
    assert running == {i: 1 for i in ITEMS}, "one running transition per item (one attempt each)"


def _check_recovery(store: Store, victim: str, killed_at: float) -> float:
    """The victim's items were re-executed by another worker only after it died, never side by side."""
    recovered_by = dict(rows(store, "SELECT executor_id, recovered_by FROM workers"))
    assert recovered_by[victim] not in (None, victim), recovered_by
    executions = rows(store, "SELECT item_id, actor, at FROM events WHERE kind = 'item.execution' ORDER BY id")
    by_item: dict[str, list[tuple[str, float]]] = {}
    for item_id, actor, at in executions:
        by_item.setdefault(item_id, []).append((actor.removeprefix("worker:"), at))
    moved = {i for i, runs_ in by_item.items() if runs_[0][0] == victim}
    assert moved, "the victim had an item in flight"
    for item_id, runs_ in by_item.items():
        if item_id not in moved:
            assert len(runs_) == 1, (item_id, runs_)
            continue
        assert len(runs_) == 2 and runs_[1][0] != victim and runs_[1][1] > killed_at, (item_id, runs_)
        overlapping = rows(store, "SELECT count(*) FROM model_calls WHERE item_id = :i AND outcome = 'ok' "
                                  "AND finished_at > :k AND started_at < :r", i=item_id, k=killed_at, r=runs_[1][1])
        assert overlapping[0][0] == 0, f"{item_id}: a model call straddles the hand-over"
    return min(by_item[i][1][1] for i in moved) - killed_at


def _stop_gracefully(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM: an idle worker exits at once with status 0."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=20) == 0
