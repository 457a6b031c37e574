"""agentsprint's own roadmap in backlog/ is a valid backlog a newcomer can copy from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentsprint.backlog import Backlog, load_backlog
from agentsprint.backlog.epics import epic_budget
from agentsprint.domain import GateKind

BACKLOG = Path(__file__).resolve().parents[2] / "backlog"


@pytest.fixture(scope="module")
def backlog() -> Backlog:
    return load_backlog(BACKLOG)


def test_every_item_parses_and_links(backlog: Backlog) -> None:
    assert backlog.items and backlog.problems == [], [str(p) for p in backlog.problems]


def test_every_item_has_a_budget_a_dod_a_person_reviews_and_an_epic_with_a_budget(backlog: Backlog) -> None:
    for item in backlog.items.values():
        assert item.budget.tokens and item.budget.usd and item.budget.rounds, item.id
        assert item.command_gates and any(g.kind is GateKind.REVIEW for g in item.dod), item.id
        assert item.acceptance_criteria, item.id
        assert item.epic and all(epic_budget(BACKLOG, item.epic)), f"{item.id}: epic {item.epic} has no budget"


def test_the_sprint_file_names_known_items_within_its_capacity(backlog: Backlog) -> None:
    sprints = sorted((BACKLOG / "sprints").glob("*.yml"))
    assert sprints
    for path in sprints:
        sprint = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert sprint["name"] == path.stem and sprint["state"] in ("planned", "active", "closed")
        assert set(sprint["items"]) <= set(backlog.items), path
        planned = sum(backlog.items[i].budget.tokens or 0 for i in sprint["items"])
        assert planned <= sprint["capacity"]["tokens"], f"{path}: {planned} tokens planned"
