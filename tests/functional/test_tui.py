"""The TUI driven by Pilot against a real project: git repository, SQLite store, scripted model server.

Approve really merges, reject really starts a round, retry and drop change the store and the item
file, the kill switch stops a run another process started, and bad input stays inside the app.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durability_support import AGENTSPRINT, cli_env, kill_group, new_project, serve_book, sprint_book, start
from runner_support import git, query
from textual.widgets import Input, Static
from tui_support import break_a_file, frozen_clock, review_project

from agentsprint.backlog import load_backlog
from agentsprint.config import ConfigError, Settings, load_settings
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner.demo_script import CODER
from agentsprint.runner.service import run_items
from agentsprint.store import Store
from agentsprint.store.runs import rounds_of
from agentsprint.tui.app import AgentSprintApp, make_app
from agentsprint.tui.screens.review import ReviewScreen
from agentsprint.tui.widgets.diffview import DiffView


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One project for the tests that only read (a run takes seconds)."""
    with pytest.MonkeyPatch.context() as env, ScriptedServer() as server:
        env.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.mktemp("git") / "config"))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        settings = review_project(tmp_path_factory.mktemp("tui") / "p", server)
        break_a_file(settings)
        yield settings



@pytest.fixture
def project(tmp_path: Path, server: ScriptedServer) -> Settings:
    """A project of its own, for a test that changes it (run before the test's event loop starts)."""
    return review_project(tmp_path / "p", server)


async def settle(app: AgentSprintApp) -> None:
    """Let the screen's workers finish and their results reach the widgets (a result may start a worker)."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await _sleep(0.05)


def table_rows(app: AgentSprintApp, selector: str) -> list[list[str]]:
    table: Any = app.screen.query_one(selector)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def screen_text(app: AgentSprintApp, selector: str) -> str:
    """The plain text a Static widget shows (Rich renderables rendered, 200 columns wide)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text().rstrip("\n")


# --- backlog ---------------------------------------------------------------------------------------


async def test_backlog_shows_items_live_status_spend_and_the_broken_file(shared: Settings) -> None:
    app = make_app(shared)
    async with app.run_test(size=(160, 40)):
        await settle(app)
        rows = {row[0]: row for row in table_rows(app, "#items")}
    assert rows["AS-1"][2] == "awaiting_review" and rows["AS-2"][2] == "escalated" and rows["AS-3"][2] == "todo"
    assert "/60k tok $" in rows["AS-1"][3] and rows["AS-1"][3].endswith("/$0.50"), rows["AS-1"]
    assert rows["AS-3"][3] == "-", "nothing spent on an item that never ran"
    assert rows["AS-1"][4:] == ["bug", "high", "3", "60k tok, $0.50, 3 rounds", "secrets, review"]
    assert rows["AS-9-broken"][1].startswith("backlog/AS-9-broken.md:5: priority"), rows["AS-9-broken"]
    assert rows["AS-9-broken"][2] == "invalid"


async def test_filter_narrows_as_you_type_and_escape_clears_it(shared: Settings) -> None:
    app = make_app(shared)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("slash", *"status:esc")
        escalated = [row[0] for row in table_rows(app, "#items")]
        app.screen.query_one("#filter", Input).value = ""
        await pilot.press(*"as-3")
        by_text = [row[0] for row in table_rows(app, "#items")]
        app.screen.query_one("#filter", Input).value = "broken"
        await pilot.pause()
        broken = [row[0] for row in table_rows(app, "#items")]
        await pilot.press("enter", "escape")
        cleared = [row[0] for row in table_rows(app, "#items")]
    assert escalated == ["AS-2"]
    assert by_text == ["AS-3"]
    assert broken == ["AS-9-broken"], "a broken file is found by its file name and error"
    assert cleared == ["AS-1", "AS-2", "AS-3", "AS-9-broken"]


async def test_enter_opens_the_items_detail_with_rounds_spend_and_transitions(shared: Settings) -> None:
    app = make_app(shared)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("down", "enter")
        await settle(app)
        detail = screen_text(app, "#body")
        await pilot.press("escape")
        back = type(app.screen).__name__
    assert detail.startswith("AS-2 Item AS-2")
    assert "round 1: reject" in detail and "spend coder:" in detail and "running -> escalated" in detail
    assert back == "BacklogScreen"


async def test_new_item_is_validated_like_add_and_written_only_when_valid(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings = _fresh(tmp_path, server)
    app = make_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#title", Input).value = "Export orders as CSV"
        form.query_one("#usd", Input).value = "-1"
        await pilot.press("enter")
        await settle(app)
        refused = screen_text(app, "#message")
        marked = form.query_one("#usd").has_class("error")
        files_after_refusal = sorted(p.name for p in settings.backlog_dir.glob("*.md"))
        form.query_one("#usd", Input).value = "0.75"
        form.query_one("#labels", Input).value = "csv, export"
        form.query_one("#dod", Input).value = "secrets; review: human"
        await pilot.press("enter")
        await settle(app)
        listed = [row[0] for row in table_rows(app, "#items")]
    assert "usd" in refused and marked, refused
    assert files_after_refusal == ["AS-1-item-as-1.md"], "nothing written for an invalid item"
    created = load_backlog(settings.backlog_dir).items["AS-2"]
    assert (created.title, created.budget.usd, created.labels) == ("Export orders as CSV", 0.75, ["csv", "export"])
    assert [g.name for g in created.dod] == ["secrets", "review"]
    assert listed == ["AS-1", "AS-2"]


def _editor(tmp_path: Path, sed: str) -> str:
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\nsed -i '{sed}' \"$1\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_edit_refuses_to_save_an_invalid_file_and_saves_a_valid_one(
        tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fresh(tmp_path, server)
    path = next(settings.backlog_dir.glob("AS-1-*.md"))
    before = path.read_text()
    app = make_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        monkeypatch.setenv("EDITOR", _editor(tmp_path, "s/^priority: high/priority: urgent/"))
        await pilot.press("e")
        await settle(app)
        refused = screen_text(app, "#message")
        after_refusal = path.read_text()
        monkeypatch.setenv("EDITOR", _editor(tmp_path, "s/^priority: high/priority: low/"))
        await pilot.press("e")
        await settle(app)
        saved = screen_text(app, "#message")
        shown = table_rows(app, "#items")[0][5]
    assert "not saved" in refused and "AS-1-item-as-1.md:" in refused and "priority" in refused, refused
    assert after_refusal == before
    assert saved == f"saved {path.name}" and "priority: low" in path.read_text() and shown == "low"


# --- inbox, review, escalations ------------------------------------------------------------------


async def test_inbox_lists_what_waits_oldest_first_with_wait_spend_and_what_approving_does(shared: Settings) -> None:
    app = make_app(shared, clock=lambda: frozen_clock(shared), start="inbox")
    async with app.run_test(size=(160, 40)):
        await settle(app)
        rows = table_rows(app, "#inbox")
    assert [(r[0], r[1]) for r in rows] == [("escalation", "AS-2"), ("review", "AS-1")]
    assert rows[1][2] == "5m" and rows[1][3] == "fast-forward", rows
    assert "tok $" in rows[1][4] and "/60k" in rows[1][4], rows[1]
    assert rows[0][5].startswith("rounds:") and rows[1][5] == "review round 1: 1 file, 2 lines", rows


async def test_the_inbox_says_when_approving_would_make_a_merge_commit_or_conflict(project: Settings) -> None:
    settings = project
    (settings.root / "NOTES.md").write_text("notes\n")
    git(settings.root, "add", "NOTES.md")
    git(settings.root, "commit", "-q", "-m", "notes")
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(160, 40)):
        await settle(app)
        merge_commit = table_rows(app, "#inbox")[1][3]
    pagination = settings.root / "shop" / "pagination.py"
    pagination.write_text(pagination.read_text().replace("start = page * per_page", "start = page * per_page - 0"))
    git(settings.root, "commit", "-q", "-am", "a competing fix")
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(160, 40)):
        await settle(app)
        conflict = table_rows(app, "#inbox")[1][3]
    assert (merge_commit, conflict) == ("merge commit", "conflict in shop/pagination.py")
    assert git(settings.root, "rev-parse", "main") == git(settings.root, "rev-parse", "HEAD"), "nothing moved"


async def _open_review(app: AgentSprintApp, pilot: Any) -> None:
    await settle(app)
    rows = table_rows(app, "#inbox")
    await pilot.press(*["down"] * [r[1] for r in rows].index("AS-1"), "enter")
    await settle(app)


async def test_review_shows_the_diff_unified_or_split_with_gates_and_qa_reasons(shared: Settings) -> None:
    app = make_app(shared, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_review(app, pilot)
        facts = screen_text(app, "#facts")
        unified = screen_text(app, "#diff")
        narrow_split = app.screen.query_one("#diff", DiffView).split
        await pilot.press("v")
        split = app.screen.query_one("#diff", DiffView).split
        side = screen_text(app, "#diff")
        await pilot.press("j", "j", "k", "right_square_bracket")
        review = app.screen
        assert isinstance(review, ReviewScreen)
        files = [f.path for f in review.files]
    wide = make_app(shared, start="inbox")
    async with wide.run_test(size=(160, 40)) as pilot:
        await _open_review(wide, pilot)
        wide_split = wide.screen.query_one("#diff", DiffView).split
    assert "passed gate secrets" in facts and "QA: the diff meets every acceptance criterion" in facts
    assert "+    start = (page - 1) * per_page" in unified
    assert narrow_split is False and split is True and files == ["shop/pagination.py"]
    assert "start = page * per_page" in side and "start = (page - 1) * per_page" in side
    assert wide_split is True, "split automatically on a wide terminal"


async def test_approve_merges_into_the_base_branch(project: Settings, server: ScriptedServer) -> None:
    settings = project
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_review(app, pilot)
        await pilot.press("A")
        await settle(app)
        left = [r[1] for r in table_rows(app, "#inbox")]
    assert "(page - 1) * per_page" in (settings.root / "shop" / "pagination.py").read_text()
    assert "merge AS-1" in git(settings.root, "log", "-1", "--format=%s", "main") or \
        "AS-1" in git(settings.root, "log", "--oneline", "-3", "main")
    assert "status: done" in next(settings.backlog_dir.glob("AS-1-*.md")).read_text()
    assert query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-1'") == [("done",)]
    assert left == ["AS-2"]


async def test_reject_with_a_comment_starts_a_new_round_working_on_it(
        project: Settings, server: ScriptedServer) -> None:
    settings = project
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_review(app, pilot)
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        empty_refused = screen_text(app, "#message")
        await pilot.press(*"handle page 0", "enter")
        await settle(app)
    assert "needs a comment" in empty_refused
    assert query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-1'") == [("planned",)]
    seen: list[str] = []
    server.add("t-coder", responder=_recording(seen, CODER[("AS-1", 1)]))
    report = await asyncio.to_thread(run_items, settings, ["AS-1"])  # DBOS refuses a thread with a loop
    assert report.results["AS-1"] == "awaiting_review"
    store = Store(settings.database_url)
    try:
        assert [r.round for r in rounds_of(store, "AS-1")] == [1, 2]
    finally:
        store.close()
    assert any("human reviewer: handle page 0" in text for text in seen), "the comment is the new round's finding"


def _recording(seen: list[str], steps: list[Any]) -> Any:
    from agentsprint.llm.scripted import ScriptedReply

    def answer(body: dict[str, Any]) -> ScriptedReply:
        seen.append(json.dumps(body.get("messages", [])))
        done = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        step = steps[min(done, len(steps) - 1)]
        return step if isinstance(step, ScriptedReply) else ScriptedReply(tool_calls=[step])

    return answer


async def test_escalation_package_retry_adds_budget_and_queues_the_item(
        project: Settings, server: ScriptedServer) -> None:
    settings = project
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        package = screen_text(app, "#body")
        await pilot.press("R")
        await pilot.pause()
        app.screen.query_one("#add_tokens", Input).value = "5000"
        app.screen.query_one("#add_rounds", Input).value = "2"
        await pilot.press("enter")
        await settle(app)
    assert "rounds: 1 rejection" in package and "percent is not range-checked" in package
    assert "work preserved on agentsprint/AS-2" in package
    state = query(settings, "SELECT status, rounds_override FROM item_state WHERE item_id = 'AS-2'")
    assert state == [("planned", 2)] or state[0][1] == 2, state
    assert query(settings, "SELECT limit_tokens FROM budgets WHERE scope = 'item:AS-2'") == [(65000,)]


async def test_escalation_drop_asks_then_commits_dropped_into_the_file(
        project: Settings, server: ScriptedServer) -> None:
    settings = project
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        await pilot.press("D", "n")
        await settle(app)
        declined = query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-2'")
        await pilot.press("D", "y")
        await settle(app)
    assert declined == [("escalated",)]
    assert query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-2'") == [("dropped",)]
    assert "status: dropped" in git(settings.root, "show", "main:" + next(
        settings.backlog_dir.glob("AS-2-*.md")).relative_to(settings.root).as_posix())


# --- run monitor -----------------------------------------------------------------------------------


async def test_the_monitor_shows_a_run_from_another_process_and_the_kill_switch_stops_it(
        tmp_path: Path, server: ScriptedServer) -> None:
    serve_book(server, sprint_book(), 0.3, 0.5)
    settings = new_project(tmp_path / "p", server.base_url)
    proc = start(settings.root, "run", "--ci", "--json", log=tmp_path / "run.log")
    app = make_app(settings, start="monitor")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            running = await _wait_for_rows(app)
            runs = screen_text(app, "#runs")
            await pilot.press("k")
            await pilot.pause()
            await pilot.press("y")
            code = await _wait_for_exit(app, proc)
            await settle(app)
            after = table_rows(app, "#running")
    finally:
        kill_group(proc)
    statuses = dict(query(settings, "SELECT item_id, status FROM item_state"))
    assert running and all(row[1] in ("running", "planned") for row in running), running
    assert f"pid {proc.pid}" in runs, runs
    assert code == 1 and "stopped" in statuses.values(), statuses
    assert set(statuses.values()) <= {"stopped", "awaiting_review"} and after == []


async def _wait_for_rows(app: AgentSprintApp, timeout: float = 90) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(app)
        rows = table_rows(app, "#running")
        if any(row[4] != "-" for row in rows):  # an agent has called a tool
            return rows
        await _sleep(0.2)
    raise AssertionError("the run never showed up in the monitor")


async def _wait_for_exit(app: AgentSprintApp, proc: subprocess.Popen[bytes], timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await _sleep(0.2)
    return proc.poll()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_starting_a_run_launches_agentsprint_run_detached(project: Settings, server: ScriptedServer) -> None:
    settings = project
    app = make_app(settings, start="monitor")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("R")
        await settle(app)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not query(settings, "SELECT 1 FROM runs WHERE finished_at IS NOT NULL "
                                                              "AND pid != ?", os.getpid()):
        time.sleep(0.2)
    (log,) = (settings.state_dir / "logs").glob("run-*.log")
    assert query(settings, "SELECT count(*) FROM runs WHERE pid != ? AND finished_at IS NOT NULL",
                 os.getpid()) == [(1,)], log.read_text()
    assert "AS-3" in log.read_text(), "the run took the item left to do"


# --- settings, bad input, the command -------------------------------------------------------------


async def test_keys_are_remapped_by_binding_id(shared: Settings) -> None:
    settings = shared.model_copy(update={"tui": shared.tui.model_copy(update={"keys": {"inbox": "i"}})})
    app = make_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("r")
        after_old_key = type(app.screen).__name__
        await pilot.press("i")
        after_new_key = type(app.screen).__name__
    assert (after_old_key, after_new_key) == ("BacklogScreen", "InboxScreen")


def test_an_unknown_binding_id_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "agentsprint.toml").write_text('[tui.keys]\ninbx = "i"\n')
    with pytest.raises(ConfigError, match=r"agentsprint.toml: tui.keys.inbx: no such binding id"):
        make_app(load_settings(tmp_path, environ={}))
    done = subprocess.run([AGENTSPRINT, "tui"], cwd=tmp_path, capture_output=True, text=True, env=cli_env(),
                          timeout=60)
    assert done.returncode == 2 and "tui.keys.inbx" in done.stderr and "Traceback" not in done.stderr


async def test_a_store_that_is_not_a_database_is_a_message_not_a_traceback(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings = _fresh(tmp_path, server)
    settings.state_dir.mkdir(exist_ok=True)
    Path(settings.database_url.removeprefix("sqlite:///")).write_text("not a database\n")
    app = make_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        backlog_message = screen_text(app, "#message")
        await pilot.press("r")
        await settle(app)
        inbox_message = screen_text(app, "#message")
        alive = app.is_running
    assert "not a SQLite database" in backlog_message and "not a SQLite database" in inbox_message
    assert alive


async def test_without_a_store_yet_the_backlog_shows_and_the_inbox_is_empty(
        tmp_path: Path, server: ScriptedServer) -> None:
    settings = _fresh(tmp_path, server)
    app = make_app(settings, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        inbox_message = screen_text(app, "#message")
        await pilot.press("b")
        await settle(app)
        rows = table_rows(app, "#items")
    assert inbox_message == "nothing is waiting on you"
    assert [r[0] for r in rows] == ["AS-1"] and rows[0][2] == "todo"
    assert not Path(settings.database_url.removeprefix("sqlite:///")).exists(), "reading created no database"


async def test_question_mark_shows_the_keys_and_the_palette_finds_screen_actions(shared: Settings) -> None:
    app = make_app(shared, start="inbox")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_review(app, pilot)
        await pilot.press("question_mark")
        shown = bool(app.screen.query("HelpPanel"))
        commands = [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("question_mark")
        hidden = not app.screen.query("HelpPanel")
    assert shown and hidden
    assert {"Approve", "Reject", "Next file", "Inbox"} <= set(commands), commands


def test_bare_agentsprint_prints_help_when_not_on_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run([AGENTSPRINT], cwd=tmp_path, capture_output=True, text=True, env=cli_env(), timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "Usage:" in done.stdout and " tui " in done.stdout


def _fresh(tmp_path: Path, server: ScriptedServer) -> Settings:
    """A project with one item (AS-1) that never ran: no database yet."""
    from runner_support import item

    return new_project(tmp_path / "p", server.base_url, [item("AS-1", dod=["secrets"])])
