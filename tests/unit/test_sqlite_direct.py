"""The stdlib sqlite3 fast path answers exactly what the store's ORM queries answer, on the same database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsprint.domain import Status
from agentsprint.store import Store, sqlite_direct
from agentsprint.store import ledger as store_ledger
from agentsprint.store.items import transition
from agentsprint.store.runs import all_item_states
from agentsprint.store.sprints import sprint_item_ids
from agentsprint.store.tables import SprintItemRow, SprintRow

PATHS = {"AS-1": [Status.PLANNED, Status.RUNNING, Status.AWAITING_REVIEW],
         "AS-2": [Status.PLANNED, Status.RUNNING, Status.ESCALATED],
         "AS-10": [Status.PLANNED]}
SPRINTS = {"S1": ["AS-10", "AS-1", "AS-2"], "S2": ["AS-2"], "empty": []}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store holding item states, sprints, item, shadow and sprint budgets, and budget top-ups."""
    opened = Store(f"sqlite:///{tmp_path / 'agentsprint.db'}")
    with opened.session() as session:
        for item_id, statuses in PATHS.items():
            for number, status in enumerate(statuses):
                transition(session, item_id, status, round=number)
    _add_sprints(opened)
    store_ledger.ensure_budget(opened, "item:AS-1", 50_000, 1.5)
    store_ledger.ensure_budget(opened, "item:AS-2", None, 0.25)
    store_ledger.ensure_budget(opened, "sprint:S1", 90_000, None)
    store_ledger.ensure_budget(opened, "shadow:r1:item:AS-1", 9_000, None)
    store_ledger.add_budget(opened, "item:AS-2", 1_000, 0.5, base=(None, 0.25))
    store_ledger.add_budget(opened, "item:AS-2", 2_000, None)
    store_ledger.add_budget(opened, "item:AS-10", 500, 0.1, base=(4_000, 0.2))
    yield opened
    opened.close()


def _add_sprints(store: Store) -> None:
    """Sprints whose items were added out of id order (the order of adding is what both readers keep)."""
    now = time.time()
    with store.session() as session:
        for name, items in SPRINTS.items():
            session.add(SprintRow(name=name, created_at=now))
            for offset, item_id in enumerate(items):
                session.add(SprintItemRow(sprint=name, item_id=item_id, added_at=now + offset))


def test_live_statuses_match_the_item_states(store: Store) -> None:
    expected = {item_id: (state.status.value, state.round) for item_id, state in all_item_states(store).items()}
    assert expected == {"AS-1": ("awaiting_review", 2), "AS-2": ("escalated", 2), "AS-10": ("planned", 0)}
    assert sqlite_direct.live_statuses(store.url) == expected


@pytest.mark.parametrize("name", [*SPRINTS, "no-such-sprint"])
def test_sprint_item_ids_match_the_store(store: Store, name: str) -> None:
    expected = sprint_item_ids(store, name)
    assert expected == SPRINTS.get(name)
    assert sqlite_direct.sprint_item_ids(store.url, name) == expected


def test_item_budgets_match_the_store(store: Store) -> None:
    expected = store_ledger.item_budgets(store)
    assert set(expected.rows) == {"item:AS-1", "item:AS-2", "item:AS-10", "shadow:r1:item:AS-1"}
    assert expected.added == {"item:AS-2": (3_000, 0.5), "item:AS-10": (500, 0.1)}
    assert sqlite_direct.item_budgets(store.url) == expected


def test_a_database_not_created_yet_reads_as_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert sqlite_direct.live_statuses(url) == {}
    assert sqlite_direct.sprint_item_ids(url, "S1") is None
    assert sqlite_direct.item_budgets(url) == sqlite_direct.ItemBudgets()
