"""The sprint board and retro screens driven by Pilot against a real project, store and scripted models.

`p` writes the planner's plan into the sprint file, `a` on the backlog adds the selected item, `R` marks
the sprint active and a detached `agentsprint run --sprint` really runs its items, and the retro is the
one `agentsprint retro --sprint` makes, exported to a file by key.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_support import git, query
from textual.widgets import Static
from tui_support import review_project

from agentsprint.backlog.sprints import load_sprint, write_sprint
from agentsprint.config import Settings
from agentsprint.domain import Capacity, Sprint, SprintState
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.tui.app import AgentSprintApp, make_app
from agentsprint.tui.sprint_data import column_of, current_sprint

CAPACITY = Capacity(tokens=1_000_000, usd=10.0, review_hours=2.0)


def with_sprint(settings: Settings, items: list[str], name: str = "S1", **fields: Any) -> Settings:
    """Write and commit backlog/sprints/NAME.yml holding `items`."""
    write_sprint(settings.backlog_dir, Sprint(name=name, capacity=CAPACITY, items=items, **fields))
    git(settings.root, "add", "backlog")
    git(settings.root, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", f"Sprint {name}")
    return settings


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """AS-1 awaiting review and AS-2 escalated, both in the planned sprint S1; AS-3 to do, in no sprint."""
    with pytest.MonkeyPatch.context() as env, ScriptedServer() as server:
        env.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.mktemp("git") / "config"))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield with_sprint(review_project(tmp_path_factory.mktemp("tui") / "p", server), ["AS-1", "AS-2"])



@pytest.fixture
def bare(tmp_path: Path, server: ScriptedServer) -> Settings:
    """A project of its own with no sprint (made before the test's event loop starts: a run needs none)."""
    return review_project(tmp_path / "p", server)


@pytest.fixture
def project(bare: Settings) -> Settings:
    return with_sprint(bare, ["AS-1", "AS-2"])


async def settle(app: AgentSprintApp) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await asyncio.sleep(0.05)


def text_of(app: AgentSprintApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


async def test_the_board_puts_each_item_in_its_column_with_gauges_of_the_plan(shared: Settings) -> None:
    app = make_app(shared)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("s")
        await settle(app)
        columns = {c.id: (f"{c.border_title} {c.border_subtitle}", text_of(app, f"#{c.id}"))
                   for c in app.screen.query(".column")}
        head, gauges = text_of(app, "#sprint-head"), text_of(app, "#gauges")
    assert head == "sprint S1 (planned)"
    assert columns["col-awaiting-review"] == ("awaiting review 1", "AS-1 Item AS-1")
    assert columns["col-escalated"] == ("escalated 1", "AS-2 Item AS-2")
    assert columns["col-todo"] == ("todo 0", "") and columns["col-done"] == ("done 0", "")
    assert "120k / 1M 12%" in gauges, gauges  # two items forecast from their budgets: 2 x 60k tokens
    assert "$1.00 / $10.00 10%" in gauges, gauges
    assert "warning: review load unknown for AS-1" in gauges, "the planner's warnings are shown under the gauges"


def test_the_current_sprint_is_the_active_one_else_the_newest_planned(project: Settings) -> None:
    with_sprint(project, [], name="S0")
    with_sprint(project, [], name="S2")
    assert current_sprint(project).name == "S2"
    write_sprint(project.backlog_dir, load_sprint(project.backlog_dir, "S0").model_copy(
        update={"state": SprintState.ACTIVE}))
    assert current_sprint(project).name == "S0"


async def test_p_auto_plans_the_sprint_into_its_file(project: Settings) -> None:
    app = make_app(project, start="board")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("p")
        await settle(app)
        todo = text_of(app, "#col-todo")
    assert load_sprint(project.backlog_dir, "S1").items == ["AS-1", "AS-2", "AS-3"]
    assert todo == "AS-3 Item AS-3", "the board shows the plan it wrote"


async def test_a_on_the_backlog_adds_the_selected_item_to_the_current_sprint(project: Settings) -> None:
    app = make_app(project)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app)
        for _ in range(2):
            await pilot.press("down")
        await pilot.press("a")
        await settle(app)
    assert load_sprint(project.backlog_dir, "S1").items == ["AS-1", "AS-2", "AS-3"]


async def test_without_a_sprint_the_board_says_how_to_make_one(bare: Settings) -> None:
    app = make_app(bare, start="board")
    async with app.run_test(size=(120, 40)):
        await settle(app)
        said = text_of(app, "#message")
    assert said.startswith("no active or planned sprint (create one with: agentsprint sprint new"), said


async def test_R_starts_the_sprint_and_a_detached_run_of_its_items(bare: Settings) -> None:
    (as3,) = bare.backlog_dir.glob("AS-3*.md")
    outside = as3.read_text(encoding="utf-8").replace("AS-3", "AS-4")
    (bare.backlog_dir / "AS-4-outside.md").write_text(outside, encoding="utf-8")
    settings = with_sprint(bare, ["AS-3"])  # AS-4 could run too, but is in no sprint
    app = make_app(settings, start="board")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("R")
        await settle(app)
    assert load_sprint(settings.backlog_dir, "S1").state is SprintState.ACTIVE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not query(settings, "SELECT 1 FROM runs WHERE finished_at IS NOT NULL "
                                                              "AND pid != ?", os.getpid()):
        time.sleep(0.2)
    (log,) = (settings.state_dir / "logs").glob("run-*.log")
    assert query(settings, "SELECT count(*) FROM runs WHERE pid != ? AND finished_at IS NOT NULL",
                 os.getpid()) == [(1,)], log.read_text()
    assert "AS-3" in log.read_text(), "the run took the sprint's item"
    assert "AS-4" not in log.read_text(), "the run was `run --sprint S1`: it left the item outside alone"


@pytest.mark.parametrize(("status", "role", "column"), [
    ("running", "coder", "running"), ("running", "qa", "QA"), ("running", "security", "QA"),
    ("awaiting_review", "qa", "awaiting review"), ("planned", "", "todo"), ("stopped", "", "todo"),
    ("failed", "", "escalated"), ("escalated", "", "escalated"), ("dropped", "", "done"), ("done", "", "done")])
def test_a_running_item_is_in_QA_while_a_reviewer_works_on_it(status: str, role: str, column: str) -> None:
    assert column_of(status, role) == column


# --- retro ---------------------------------------------------------------------------------------------


async def test_the_retro_shows_the_sprints_findings_first_then_its_figures(shared: Settings) -> None:
    app = make_app(shared)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("t")
        await settle(app)
        shown = retro_text(app)
    assert shown.startswith("Retro: sprint S1\nFindings\n"), shown[:200]
    assert "1 of 1 escalation was rounds" in shown
    assert shown.index("Findings") < shown.index("Outcome") < shown.index("Token ROI")
    assert "items planned" in shown and "awaiting review" in shown


async def test_x_and_X_export_the_retro_as_markdown_and_html(shared: Settings) -> None:
    folder = shared.state_dir / "retro"
    app = make_app(shared, start="retro")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("x")
        await settle(app)
        await pilot.press("X")
        await settle(app)
    markdown, page = (folder / "S1.md").read_text(encoding="utf-8"), (folder / "S1.html").read_text(encoding="utf-8")
    assert markdown.startswith("# ") and "S1" in markdown.splitlines()[0], markdown[:200]
    assert "1 of 1 escalation was rounds" in markdown and "1 of 1 escalation was rounds" in page
    assert "<html" in page.lower() and "<html" not in markdown.lower()


async def test_without_a_sprint_the_retro_says_how_to_make_one(bare: Settings) -> None:
    app = make_app(bare, start="retro")
    async with app.run_test(size=(120, 40)):
        await settle(app)
        said = text_of(app, "#message")
    assert said.startswith("no active or planned sprint"), said


def retro_text(app: AgentSprintApp) -> str:
    """The retro as plain text (Rich renderables rendered 120 columns wide)."""
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(app.screen.query_one("#retro", Static).content)
    return console.export_text()


def test_the_board_reads_the_role_of_each_items_last_tool_call_from_the_store(shared: Settings) -> None:
    from agentsprint.store import Store
    from agentsprint.store.monitor import last_roles

    store = Store(shared.database_url)
    try:
        roles = last_roles(store, ["AS-1", "AS-3"])
    finally:
        store.close()
    recorded = query(shared, "SELECT actor FROM events WHERE item_id = 'AS-1' AND kind = 'tool.call' "
                             "ORDER BY id DESC LIMIT 1")
    assert roles == {"AS-1": recorded[0][0].removeprefix("agent:"), "AS-3": ""}, roles
    assert roles["AS-1"], "AS-1 ran: its last tool call has a role"


@pytest.fixture
def fresh(tmp_path: Path, server: ScriptedServer) -> Settings:
    """A project whose AS-1 never ran (no database yet), in the planned sprint S1."""
    from durability_support import new_project
    from runner_support import item

    return with_sprint(new_project(tmp_path / "p", server.base_url, [item("AS-1", dod=["secrets"])]), ["AS-1"])


async def test_before_the_first_run_the_board_and_retro_show_without_a_database(fresh: Settings) -> None:
    app = make_app(fresh, start="board")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        todo, said = text_of(app, "#col-todo"), text_of(app, "#message")
        await pilot.press("t")
        await settle(app)
        retro, retro_said = retro_text(app), text_of(app, "#message")
    assert (todo, said) == ("AS-1 Item AS-1", "")
    assert retro.startswith("Retro: sprint S1\nFindings\n") and retro_said == "", (retro[:300], retro_said)


async def test_a_broken_sprint_file_is_a_message_naming_its_line(bare: Settings) -> None:
    path = bare.backlog_dir / "sprints" / "S1.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("name: S1\nstate: planned\ncapacity:\n  tokens: -5\n", encoding="utf-8")
    app = make_app(bare, start="board")
    async with app.run_test(size=(120, 40)):
        await settle(app)
        said = text_of(app, "#message")
    assert said.startswith("backlog/sprints/S1.yml:4:"), said
