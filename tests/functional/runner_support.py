"""Helpers for runner tests: a sample project wired to a scripted model server."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from agentsprint.config import Settings, load_settings
from agentsprint.domain import Budget, Item, ItemType, Priority, parse_gate
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner.demo import CONFIG, create_sample
from agentsprint.runner.demo_script import ScriptBook
from agentsprint.store import Store, runs
from agentsprint.store.items import ItemState

TEST_CONFIG = CONFIG.replace("demo-", "t-").replace('num_retries = 1', 'num_retries = 2').replace(
    'call_timeout = "30s"', 'call_timeout = "3s"')


def item(item_id: str, *, dod: list[Any] | None = None, scope: list[str] | None = None, body: str = "",
         type_: ItemType = ItemType.BUG, depends_on: list[str] | None = None, **budget: Any) -> Item:
    """An item of the sample shop; budget keywords go to Budget."""
    budget = {"tokens": 60000, "usd": 0.5, "time": "5m", "rounds": 3, **budget}
    return Item(id=item_id, title=f"Item {item_id}", type=type_, priority=Priority.HIGH, value=3,
                scope=scope if scope is not None else ["shop/**"], depends_on=depends_on or [],
                budget=Budget(**budget),
                dod=[parse_gate(g) for g in (dod if dod is not None else [{"tests": "python -m unittest -q"}])],
                body=body or f"Work on {item_id}.\n\n## Acceptance criteria\n- it works\n")


def make_project(root: Path, server: ScriptedServer, items: list[Item], book: ScriptBook,
                 config: str = TEST_CONFIG) -> Settings:
    """Create the sample repository with `items` and point the t-* models at `server` via `book`."""
    for model, responder in book.responders("t").items():
        server.add(model, responder=responder)
    create_sample(root, server.base_url, items, config=config)
    return load_settings(root, environ={})


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the project's SQLite database directly (what a user's SQL client would see)."""
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def state_of(store: Store, item_id: str) -> ItemState:
    """The item's live state (the test fails when the database has none)."""
    state = runs.item_state(store, item_id)
    assert state is not None, f"{item_id}: no state recorded"
    return state
