"""Who decided: human decisions record the git identity (or --as), and [review] approvers is enforced and audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runner_support import git, item, make_project, query

from agentsprint.config import Settings, load_settings
from agentsprint.domain import Status
from agentsprint.llm.scripted import ScriptedServer
from agentsprint.runner import actions
from agentsprint.runner.deciders import matches, person
from agentsprint.runner.demo_script import CODER, PLANS, ScriptBook
from agentsprint.runner.service import run_items
from agentsprint.runner.settle import Project
from agentsprint.store.items import transition

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
ALICE = "Alice Reviewer <alice@example.invalid>"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSPRINT_", "GIT_"))}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def set_identity(root: Path, name: str, email: str) -> None:
    git(root, "config", "user.name", name)
    git(root, "config", "user.email", email)


def set_approvers(root: Path, approvers: list[str]) -> Settings:
    config = root / "agentsprint.toml"
    text = config.read_text().split("\n[review]\n")[0]
    config.write_text(text + f"\n[review]\napprovers = {json.dumps(approvers)}\n")
    git(root, "commit", "-qam", "approvers")
    return load_settings(root, environ={})


def events(settings: Settings, kind: str) -> list[tuple[str, dict[str, object]]]:
    rows = query(settings, "SELECT actor, data_json FROM events WHERE kind = ? ORDER BY id", kind)
    return [(actor, json.loads(data)) for actor, data in rows]


@pytest.fixture
def waiting(tmp_path: Path) -> Settings:
    """A project whose AS-1 ran for real and awaits review; git says the user is Alice."""
    with ScriptedServer() as server:
        book = ScriptBook({"AS-1": PLANS["AS-1"]}, {("AS-1", 1): CODER[("AS-1", 1)]})
        settings = make_project(tmp_path / "p", server, [item("AS-1", dod=[{"review": "human"}])], book)
        assert run_items(settings, ["AS-1"]).results == {"AS-1": "awaiting_review"}
    set_identity(settings.root, "Alice Reviewer", "alice@example.invalid")
    return settings


def test_a_non_approver_is_refused_and_the_attempt_is_recorded(waiting: Settings) -> None:
    root = waiting.root
    settings = set_approvers(root, ["bob@example.invalid"])
    refused = cli(root, "review", "approve", "AS-1")
    assert refused.returncode == 1 and f"{ALICE} is not among [review] approvers" in refused.stderr
    assert events(settings, "decision.refused") == [
        (f"human:{ALICE}", {"action": "approve", "reason": refused.stderr.split("error: ")[1].strip()})]
    assert query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-1'") == [("awaiting_review",)]
    posing = cli(root, "review", "approve", "AS-1", "--as", "bob@example.invalid")
    assert posing.returncode == 2 and "--as is not allowed here" in posing.stderr
    set_identity(root, "Bob Approver", "bob@example.invalid")
    approved = cli(root, "review", "approve", "AS-1")
    assert approved.returncode == 0, approved.stderr
    assert [actor for actor, _ in events(settings, "review")] == ["human:Bob Approver <bob@example.invalid>"]
    shown = cli(root, "audit", "show", "AS-1").stdout
    assert "decision.refused" in shown and "approve refused" in shown and "human:Bob Approver" in shown


def test_reject_records_the_git_identity_or_the_as_name(waiting: Settings) -> None:
    root = waiting.root
    assert cli(root, "review", "reject", "AS-1", "-m", "rename it", "--as", "carol").returncode == 0
    assert events(waiting, "review")[-1][0] == "human:carol"
    assert query(waiting, "SELECT reviewer FROM reviews") == [("carol",)]
    assert person(waiting) == ALICE, "without --as the git identity is the person"


def _escalated(tmp_path: Path) -> Project:
    with ScriptedServer() as server:
        settings = make_project(tmp_path / "p", server, [item("AS-2")], ScriptBook({}, {}))
    set_identity(settings.root, "Alice Reviewer", "alice@example.invalid")
    settings = set_approvers(settings.root, ["Bob Approver"])
    project = actions.open_project(settings)
    with project.store.session() as session:
        transition(session, "AS-2", Status.RUNNING)
        transition(session, "AS-2", Status.ESCALATED, reason="budget")
    return project


def test_a_budget_top_up_by_a_non_approver_is_refused_and_recorded(tmp_path: Path) -> None:
    project = _escalated(tmp_path)
    with pytest.raises(actions.NotAllowed, match="may not top-up"):
        actions.retry(project, "AS-2", add_tokens=10_000)
    settings = project.settings
    assert events(settings, "budget.added") == [], "no budget was added"
    assert events(settings, "decision.refused")[0][0] == f"human:{ALICE}"
    assert query(settings, "SELECT status FROM item_state WHERE item_id = 'AS-2'") == [("escalated",)]
    actions.retry(project, "AS-2", add_tokens=10_000, who="Bob Approver")  # a front end naming the approver
    assert events(settings, "budget.added")[0][0] == "human:Bob Approver"
    project.store.close()


def test_a_retry_without_a_top_up_and_a_drop_need_no_approver(tmp_path: Path) -> None:
    project = _escalated(tmp_path)
    actions.retry(project, "AS-2")
    assert events(project.settings, "escalation.resolved")[0][0] == f"human:{ALICE}"
    project.store.close()


def test_approver_entries_match_the_name_the_email_or_both() -> None:
    assert all(matches(entry, ALICE) for entry in ("Alice Reviewer", "alice@example.invalid", ALICE, "ALICE REVIEWER"))
    assert not any(matches(entry, ALICE) for entry in ("Alice", "bob@example.invalid", ""))
