"""The kill switch and the dead-letter list through the installed `agentsprint` script.

`agentsprint stop` from another process freezes a running sprint (items `stopped`, work committed on
their branches, `run` exits 1); the next `run` resumes it to the end an uninterrupted run reaches,
without repeating a completed model call. A provider that is down dead-letters the item; after the
config is fixed, `escalations retry` queues it again and `run` completes it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from durability_support import ITEM_IDS, cli, kill_group, new_project, serve_book, snapshot, sprint_book, start
from runner_support import TEST_CONFIG, git, item, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer

LATENCY = (0.3, 0.5)
DOWN = "http://127.0.0.1:9/v1"


PROGRESS = ("SELECT (SELECT count(DISTINCT item_id) FROM model_calls WHERE outcome = 'ok'), "
            "(SELECT count(*) FROM events WHERE kind = 'tool.call' AND json_extract(data_json, '$.tool') "
            "IN ('write_file', 'edit_file'))")


def wait_for_progress(settings: Settings, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Return once two items have called a model and a coder has written a file (the sprint is mid-way)."""
    deadline = time.monotonic() + timeout
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be stopped"
        with contextlib.suppress(sqlite3.OperationalError):  # not created or migrated yet
            if database.is_file() and query(settings, PROGRESS)[0] >= (2, 1):
                return
        time.sleep(0.05)
    raise AssertionError(f"no progress within {timeout} s")


def test_stop_freezes_the_run_and_run_resumes_it_to_the_same_end(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        serve_book(server, sprint_book(), *LATENCY)
        baseline = new_project(tmp_path / "baseline", server.base_url)
        assert cli(baseline.root, "run", "--ci", "--json", timeout=180).returncode == 0
        project = new_project(tmp_path / "stopped", server.base_url)
        proc = start(project.root, "run", "--ci", "--json", log=tmp_path / "run.log")
        try:
            wait_for_progress(project, proc)
            stop = cli(project.root, "stop", timeout=60)
            stopped_at = time.monotonic()
            code = proc.wait(timeout=60)
            exit_seconds = time.monotonic() - stopped_at
        finally:
            kill_group(proc)
        frozen = dict(query(project, "SELECT item_id, status FROM item_state"))
        stopped = [i for i, status in frozen.items() if status == "stopped"]
        dirty = {i: git(project.worktrees_dir / i, "status", "--porcelain") for i in stopped
                 if (project.worktrees_dir / i).is_dir()}
        preserved = {i: git(project.root, "diff", f"main...agentsprint/{i}") for i in dirty}
        ok_before = query(project, "SELECT count(*) FROM model_calls WHERE outcome = 'ok'")[0][0]
        resumed = cli(project.root, "run", "--ci", "--json", timeout=180)

    log, errors = (tmp_path / "run.log").read_text(), (tmp_path / "run.log.err").read_text()
    print(f"\nrun exited {exit_seconds:.2f} s after `agentsprint stop` returned; {ok_before} calls done before")
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    assert code == 1 and "Traceback" not in errors, log + errors
    assert "stopped" in json.loads(log)["results"].values()
    assert len(stopped) >= 2 and set(frozen.values()) <= {"stopped", "awaiting_review"}, frozen
    assert dirty and all(out == "" for out in dirty.values()), f"uncommitted work after the stop: {dirty}"
    assert any(preserved.values()), "the coder's writes before the stop are committed on their branches"
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    want, got = snapshot(baseline), snapshot(project)
    assert got.statuses == want.statuses == dict.fromkeys(ITEM_IDS, "awaiting_review")
    assert got.attempts == want.attempts, "a stopped item is resumed, not started again"
    assert 0 < ok_before < want.ok_calls and got.ok_calls == want.ok_calls, "no completed call is repeated"
    assert got.calls_by_item == want.calls_by_item
    assert got.diffs == want.diffs and got.files == want.files and got.rounds == want.rounds
    assert got.over_budget == [] and got.chain[1] is None


def test_a_dead_lettered_item_is_listed_and_retried_after_the_provider_is_fixed(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        serve_book(server, sprint_book(), 0.0, 0.0)
        items = [item("AS-1", dod=["secrets", {"review": "human"}], scope=["shop/pagination.py"])]
        settings = new_project(tmp_path / "p", server.base_url, items, config=TEST_CONFIG.replace("{base}", DOWN))
        root = settings.root

        failed_run = cli(root, "run", "--ci", "--json", timeout=120)
        listed = cli(root, "escalations", "list", "--failed", "--json")
        config = root / "agentsprint.toml"
        config.write_text(config.read_text().replace(DOWN, server.base_url))
        retried = cli(root, "escalations", "retry", "AS-1")
        again = cli(root, "run", "--ci", "--json", timeout=120)

    assert failed_run.returncode == 1 and json.loads(failed_run.stdout)["results"] == {"AS-1": "failed"}
    dead = json.loads(listed.stdout)
    assert [(e["id"], e["reason"]) for e in dead] == [("AS-1", "failed")]
    assert "127.0.0.1:9" in dead[0]["detail"] or "connect" in dead[0]["detail"].lower(), dead[0]["detail"]
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert json.loads(cli(root, "escalations", "list", "--failed", "--json").stdout) == []
    assert again.returncode == 0 and json.loads(again.stdout)["results"] == {"AS-1": "awaiting_review"}, again.stdout
    assert "page - 1" in git(root, "diff", "main...agentsprint/AS-1"), "the fix is on the item branch"
