"""Selecting a sprint's items for `list --sprint` and `run --sprint` (sprints themselves are stored rows)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import item, make_project
from test_cli_run import cli

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import RunError, run_items
from agentsprint.store import Store
from agentsprint.store.tables import SprintItemRow, SprintRow


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Settings]:
    book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1"), item("AS-2", scope=["shop/x.py"])], book)
        store = Store(settings.database_url)
        with store.session() as session:
            session.add(SprintRow(name="S1", tokens=100000, usd=1.0, created_at=time.time()))
            session.add(SprintItemRow(sprint="S1", item_id="AS-1", added_at=time.time()))
        store.close()
        yield settings


def test_list_and_run_a_sprint(project: Settings) -> None:
    listed = json.loads(cli(project.root, "list", "--sprint", "S1", "--json").stdout)
    assert [i["id"] for i in listed] == ["AS-1"]
    assert cli(project.root, "list", "--sprint", "nope").returncode == 2

    assert run_items(project, sprint="S1").results == {"AS-1": "done"}
    with pytest.raises(RunError, match="no sprint named 'nope'"):
        run_items(project, sprint="nope")


def test_items_of_a_sprint_share_its_budget(tmp_path: Path) -> None:
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)], ("AS-2", 1): CODER[("AS-1", 1)]})
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[]), item("AS-2", dod=[])], book)
        store = Store(settings.database_url)
        with store.session() as session:
            session.add(SprintRow(name="S2", tokens=12000, created_at=time.time()))
            for item_id in ("AS-1", "AS-2"):
                session.add(SprintItemRow(sprint="S2", item_id=item_id, added_at=time.time()))

        results = run_items(settings, sprint="S2", parallel=2).results

        assert sorted(results.values()) != ["done", "done"], "12,000 tokens cannot pay for both items"
        assert "escalated" in results.values()
        from runner_support import query

        (limit, spent, reserved), = query(settings, "SELECT limit_tokens, spent_tokens, reserved_tokens FROM budgets "
                                                    "WHERE scope = 'sprint:S2'")
        assert limit == 12000 and spent + reserved <= limit
        store.close()


def _two_items_book() -> ScriptBook:
    return ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)], ("AS-2", 1): CODER[("AS-1", 1)]})


def test_a_sprint_budget_applies_even_when_items_are_run_by_id(tmp_path: Path) -> None:
    from runner_support import query

    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[]), item("AS-2", dod=[])],
                                _two_items_book())
        store = Store(settings.database_url)
        with store.session() as session:
            session.add(SprintRow(name="S3", tokens=12000, created_at=time.time()))
            for item_id in ("AS-1", "AS-2"):
                session.add(SprintItemRow(sprint="S3", item_id=item_id, added_at=time.time()))
        store.close()

        results = run_items(settings, ["AS-1", "AS-2"], parallel=2).results  # no --sprint

        assert "escalated" in results.values()
        (limit, spent, reserved), = query(settings, "SELECT limit_tokens, spent_tokens, reserved_tokens FROM budgets "
                                                    "WHERE scope = 'sprint:S3'")
        assert limit == 12000 and 0 < spent + reserved <= limit


def test_an_epic_budget_file_is_a_circuit_breaker_over_its_items(tmp_path: Path) -> None:
    from runner_support import query

    from agentsprint.domain import Item

    def in_epic(item_id: str) -> Item:
        return item(item_id, dod=[]).model_copy(update={"epic": "billing"})

    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [in_epic("AS-1"), in_epic("AS-2")], _two_items_book())
        (settings.backlog_dir / "epics").mkdir()
        (settings.backlog_dir / "epics" / "billing.yml").write_text("title: Billing\nbudget:\n  tokens: 12000\n")

        results = run_items(settings, ["AS-1", "AS-2"], parallel=2).results

        assert "escalated" in results.values()
        (limit, spent, reserved), = query(settings, "SELECT limit_tokens, spent_tokens, reserved_tokens FROM budgets "
                                                    "WHERE scope = 'epic:billing'")
        assert limit == 12000 and 0 < spent + reserved <= limit


def test_a_broken_epic_file_names_itself(tmp_path: Path) -> None:
    from agentsprint.backlog.epics import epic_budget
    from agentsprint.backlog.errors import BacklogError

    (tmp_path / "epics").mkdir()
    (tmp_path / "epics" / "x.yml").write_text("budget:\n  tokens: -5\n")
    with pytest.raises(BacklogError, match=r"epics/x\.yml"):
        epic_budget(tmp_path, "x")
    assert epic_budget(tmp_path, "missing") == (None, None)
