"""Helpers for sprint tests: a project wired to the scripted models, planned and committed by the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner_support import git, item, make_project
from test_cli_run import cli

from agentsprint.domain import Item, Priority
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook


def sprint_items() -> list[Item]:
    """AS-1 passes, AS-2 is rejected once and escalates (rounds: 1), AS-3 is too big for the sprint,
    AS-4 waits for AS-3."""
    return [
        item("AS-1", dod=[{"tests": "python -m unittest -q"}]),
        item("AS-2", dod=[], scope=["shop/x.py"], rounds=1),
        item("AS-3", scope=["docs/**"], usd=50.0).model_copy(update={"priority": Priority.CRITICAL}),
        item("AS-4", scope=["lib/**"], depends_on=["AS-3"]),
    ]


def sprint_book() -> ScriptBook:
    """The scripted supervisor, coder and QA of `sprint_items`."""
    return ScriptBook({"AS-1": PLANS["AS-1"], "AS-2": PLANS["AS-1"]},
                      {("AS-1", 1): CODER[("AS-1", 1)],
                       ("AS-2", 1): [tool_call("write_file", path="shop/x.py", content="X = 1\n"),
                                     tool_call("finish", summary="x")]},
                      {("AS-2", 1): tool_call("submit_verdict", verdict="reject", reasons=["no"])})


def sprint_project(root: Path, server: ScriptedServer, items: list[Item] | None = None) -> Path:
    """A committed sample repository with `items` (default `sprint_items`) and the scripted models."""
    return make_project(root, server, sprint_items() if items is None else items, sprint_book()).root


def plan_and_commit(root: Path, name: str, *new_args: str) -> dict[str, Any]:
    """`sprint new NAME ...`, `sprint plan NAME --auto --json`, then commit the sprint file; the plan."""
    made = cli(root, "sprint", "new", name, *new_args)
    assert made.returncode == 0, made.stderr
    planned = cli(root, "sprint", "plan", name, "--auto", "--json")
    assert planned.returncode == 0, planned.stderr
    git(root, "add", f"backlog/sprints/{name}.yml")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", f"Plan sprint {name}")
    return dict(json.loads(planned.stdout))
