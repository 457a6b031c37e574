"""The status machine as the store enforces it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsprint.domain import Status, can_transition
from agentsprint.store import Store
from agentsprint.store.items import TransitionError, get_state, transition


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield opened
    opened.close()


def test_a_final_step_finishing_after_a_stop_keeps_its_outcome(store: Store) -> None:
    with store.session() as session:
        transition(session, "AS-1", Status.RUNNING)
        transition(session, "AS-1", Status.STOPPED, actor="human")
        transition(session, "AS-1", Status.AWAITING_REVIEW)
        state = get_state(session, "AS-1")
        assert state is not None and state.status is Status.AWAITING_REVIEW


def test_done_is_final_and_same_status_is_a_no_op(store: Store) -> None:
    with store.session() as session:
        transition(session, "AS-1", Status.RUNNING)
        transition(session, "AS-1", Status.DONE)
        before = get_state(session, "AS-1")
        transition(session, "AS-1", Status.DONE)
        after = get_state(session, "AS-1")
        assert before is not None and after is not None and after.updated_at == before.updated_at
        with pytest.raises(TransitionError, match="cannot go from done to running"):
            transition(session, "AS-1", Status.RUNNING)


@pytest.mark.parametrize("status", list(Status))
def test_every_status_has_a_way_out_or_is_final(status: Status) -> None:
    reachable = [s for s in Status if can_transition(status, s)]
    assert reachable or status is Status.DONE


def test_time_spent_stopped_is_not_on_the_items_clock(store: Store) -> None:
    import time as _time

    from sqlmodel import select

    from agentsprint.store import runs
    from agentsprint.store.tables import ItemTransitionRow

    with store.session() as session:
        transition(session, "AS-1", Status.RUNNING)
        transition(session, "AS-1", Status.STOPPED, actor="human")
        stopped = session.exec(select(ItemTransitionRow)
                               .where(ItemTransitionRow.to_status == "stopped")).one()
        stopped.at -= 100  # it was stopped 100 s ago
        session.add(stopped)
    runs.resume_item(store, "AS-1", "r2")
    state = runs.item_state(store, "AS-1")
    assert state is not None and state.status is Status.RUNNING
    lag = _time.time() - runs.clock(store, "AS-1")
    assert 99 < lag < 110, "the 100 s spent stopped do not count"
