"""A project for the TUI tests: one item awaiting review, one escalated, one to do and a broken file."""

from __future__ import annotations

from pathlib import Path

from runner_support import item, make_project, query

from agentsprint.config import Settings
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items

BROKEN = "---\nid: AS-9\ntitle: Broken\ntype: bug\npriority: urgent\n---\nA priority that does not exist.\n"
REJECT = tool_call("submit_verdict", verdict="reject", reasons=["percent is not range-checked"])


def review_project(root: Path, server: ScriptedServer) -> Settings:
    """AS-1 awaiting review (the pagination fix), AS-2 escalated after one rejected round, AS-3 to do."""
    coder = {("AS-1", 1): CODER[("AS-1", 1)],
             ("AS-2", 1): [tool_call("write_file", path="shop/pricing_note.py", content="NOTE = 1\n"),
                           tool_call("finish", summary="note")]}
    book = ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]}, coder, {("AS-2", 1): REJECT})
    items = [item("AS-1", dod=["secrets", {"review": "human"}]),
             item("AS-2", dod=[], rounds=1, scope=["shop/pricing_note.py"]),
             item("AS-3", dod=["secrets"], scope=["shop/other.py"])]
    settings = make_project(root, server, items, book)
    report = run_items(settings, ["AS-1", "AS-2"])
    assert report.results == {"AS-1": "awaiting_review", "AS-2": "escalated"}, report.results
    return settings


def break_a_file(settings: Settings) -> Path:
    """Add an item file whose priority is invalid (line 5); its path."""
    path = settings.backlog_dir / "AS-9-broken.md"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def frozen_clock(settings: Settings) -> float:
    """Five minutes after the store's last transition: wait times the same on every run of the tests."""
    return float(query(settings, "SELECT max(at) FROM item_transitions")[0][0]) + 300
