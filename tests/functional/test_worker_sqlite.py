"""`agentsprint run --submit` and `agentsprint worker` on the default SQLite database (one machine).

Real processes: the CLI submits, workers execute; SIGTERM drains running items or leaves them to recovery.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from runner_support import item, make_project, query
from worker_support import agentsprint_argv, logs, slow_responders, start_worker, stop_all, wait_for

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import ScriptBook

pytestmark = pytest.mark.slow


def _coder(n: int) -> list[Any]:
    return [tool_call("write_file", path=f"shop/feature_{n}.py", content=f"FEATURE = {n}\n"),
            tool_call("read_file", path=f"shop/feature_{n}.py"),
            tool_call("finish", summary=f"added shop/feature_{n}.py")]



def _project(root: Path, server: ScriptedServer, ids: list[int], latency: float) -> Settings:
    book = ScriptBook({}, {(f"AS-{n}", 1): _coder(n) for n in ids})
    items = [item(f"AS-{n}", scope=[f"shop/feature_{n}.py"], dod=["secrets"]) for n in ids]
    settings = make_project(root, server, items, book)
    slow_responders(server, book, latency)
    return settings


def _submit(root: Path, *ids: str) -> dict[str, Any]:
    argv = agentsprint_argv("run", "--submit", "--json", *(a for i in ids for a in ("--item", i)))
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _statuses(settings: Settings) -> dict[str, str]:
    return dict(query(settings, "SELECT item_id, status FROM item_state"))


def _ok_calls(settings: Settings, item_id: str) -> int:
    return int(query(settings, "SELECT count(*) FROM model_calls WHERE item_id = ? AND outcome = 'ok'", item_id)[0][0])


def test_submit_returns_at_once_and_an_idle_exit_worker_runs_the_queue(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _project(tmp_path / "p", server, [1, 2], latency=0.0)
    started = time.monotonic()
    submitted = _submit(settings.root, "AS-1", "AS-2")
    assert submitted["submitted"] == {"AS-1": "AS-1:1", "AS-2": "AS-2:1"} and submitted["skipped"] == {}
    assert _statuses(settings) == {"AS-1": "planned", "AS-2": "planned"}, "submitting executes nothing"
    assert not server.requests, "no model was called by the submitting process"
    log = tmp_path / "worker.log"
    worker = start_worker(settings.root, log, "--idle-exit", "2")
    try:
        assert worker.wait(timeout=120) == 0, logs([log])
    finally:
        stop_all([worker])
    assert _statuses(settings) == {"AS-1": "done", "AS-2": "done"}
    assert all(_ok_calls(settings, i) == 5 for i in ("AS-1", "AS-2"))
    again = _submit(settings.root, "AS-1")
    assert again["submitted"] == {} and again["skipped"] == {"AS-1": "already done"}
    print(f"submit + worker on SQLite: {time.monotonic() - started:.1f} s")


def test_sigterm_drains_a_running_item_then_exits(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _project(tmp_path / "p", server, [1], latency=0.3)
    log = tmp_path / "worker.log"
    worker = start_worker(settings.root, log, "--drain", "30")
    try:
        _submit(settings.root, "AS-1")
        wait_for(lambda: _ok_calls(settings, "AS-1") >= 1, 60, "the item in flight")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=40) == 0, logs([log])
    finally:
        stop_all([worker])
    assert _statuses(settings) == {"AS-1": "done"}, "the running item finished within the drain"
    (stopped_at, heartbeat_at), = query(settings, "SELECT stopped_at, heartbeat_at FROM workers")
    assert stopped_at and heartbeat_at == 0.0, "nothing left behind: handed over at once"


def test_sigterm_past_the_drain_leaves_the_item_to_another_worker(tmp_path: Path, server: ScriptedServer) -> None:
    settings = _project(tmp_path / "p", server, [1], latency=1.0)
    logs_ = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_worker(settings.root, logs_[0], "--drain", "0")
    procs = [first]
    try:
        _submit(settings.root, "AS-1")
        wait_for(lambda: _ok_calls(settings, "AS-1") >= 1, 60, "the item in flight")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0, logs(logs_)
        assert _statuses(settings) == {"AS-1": "running"}
        procs.append(start_worker(settings.root, logs_[1]))
        wait_for(lambda: _statuses(settings) == {"AS-1": "done"} or None, 90, "the second worker to finish it")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs(logs_)}") from exc
    finally:
        stop_all(procs)
    assert _ok_calls(settings, "AS-1") == 5, "no completed model call was made again"
    executions = query(settings, "SELECT actor FROM events WHERE kind = 'item.execution' ORDER BY id")
    assert len(executions) == 2 and executions[0] != executions[1]
    workers = dict(query(settings, "SELECT executor_id, recovered_by FROM workers"))
    assert len(workers) == 2 and list(workers.values()).count(None) == 1
