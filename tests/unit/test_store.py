"""Store on real SQLite: named migrations applied once, transitions, and a tamper-evident event chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from agentsprint.domain import Status
from agentsprint.store import Store
from agentsprint.store.engine import MIGRATIONS, migrate
from agentsprint.store.events import append_event, verify_chain
from agentsprint.store.items import TransitionError, transition
from agentsprint.store.sqlite_direct import live_statuses


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'state' / 'agentsprint.db'}")
    yield opened
    opened.close()


def applied(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT name FROM schema_migrations ORDER BY name"))]


def test_migrations_are_named_and_applied_once(store: Store) -> None:
    names = [name for name, _ in MIGRATIONS]
    assert len(names) == len(set(names)) and all(name[:3].isdigit() for name in names)
    assert applied(store) == sorted(names)
    assert migrate(store.engine) == []  # a second open applies none
    reopened = Store(store.url)
    assert applied(reopened) == sorted(names)
    reopened.close()


def test_a_database_of_an_older_release_gets_only_the_new_migrations(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsprint.store import engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setattr(engine, "MIGRATIONS", MIGRATIONS[:1])  # the first release knew only 001
    old = Store(url)
    assert applied(old) == ["001_initial"]
    with old.engine.connect() as conn:
        assert not inspect(conn).has_table("webhook_outbox")
        conn.execute(text("INSERT INTO workers (executor_id, host, pid, started_at, heartbeat_at) "
                          "VALUES ('w1', 'h', 1, 1.0, 1.0)"))
        conn.commit()
    old.close()
    monkeypatch.setattr(engine, "MIGRATIONS", MIGRATIONS)
    upgraded = Store(url)
    assert applied(upgraded) == sorted(name for name, _ in MIGRATIONS)
    with upgraded.engine.connect() as conn:
        assert inspect(conn).has_table("webhook_outbox")
        assert conn.execute(text("SELECT executor_id FROM workers")).all() == [("w1",)], "old rows are kept"
    upgraded.close()


def test_transitions_follow_the_status_machine_and_show_in_the_sqlite_direct_reader(store: Store) -> None:
    with store.session() as session:
        transition(session, "AS-1", Status.PLANNED, round=0)
        transition(session, "AS-1", Status.RUNNING, round=1)
    # running -> planned is not a move of the status machine (running -> todo is: a shadow attempt's end)
    with pytest.raises(TransitionError, match="cannot go from running to planned"), store.session() as session:
        transition(session, "AS-1", Status.PLANNED)
    assert live_statuses(store.url) == {"AS-1": ("running", 1)}


def test_event_chain_verifies_and_names_the_first_tampered_event(store: Store) -> None:
    with store.session() as session:
        transition(session, "AS-1", Status.RUNNING)
        for n in range(3):
            append_event(session, "note", item_id="AS-1", data={"n": n})
    with store.session() as session:
        assert verify_chain(session) == (4, None, None)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE events SET data_json = :tampered WHERE id = 3"), {"tampered": '{"n":99}'})
    with store.session() as session:
        checked, bad_id, reason = verify_chain(session)
    assert (checked, bad_id) == (2, 3) and reason is not None and "content" in reason


def test_deleted_event_breaks_the_chain_at_the_next_one(store: Store) -> None:
    with store.session() as session:
        for n in range(3):
            append_event(session, "note", data={"n": n})
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = 2"))
    with store.session() as session:
        assert verify_chain(session)[1] == 3


def test_the_typed_call_records_name_the_model_calls_columns_with_their_defaults() -> None:
    from dataclasses import MISSING, fields

    from agentsprint.store.ledger import CallRecord, CallSettlement
    from agentsprint.store.tables import ModelCallRow

    columns = dict(ModelCallRow.model_fields.items())
    record = {f.name: f.default for f in fields(CallRecord)}
    assert record.keys() == columns.keys(), "a row is read and inserted whole: every column, no other name"
    assert {n: d for n, d in record.items() if d is not MISSING} == \
        {n: info.default for n, info in columns.items() if not info.is_required()}
    assert {f.name for f in fields(CallSettlement)} <= columns.keys()


def test_a_begin_step_output_pickled_before_the_rename_still_loads() -> None:
    import pickle

    from agentsprint.store.runs import ItemStart

    recorded = pickle.dumps(ItemStart(status=Status.RUNNING, round=2), protocol=0)
    old = recorded.replace(b"\nItemStart\n", b"\nBegin\n")  # the class's name when DBOS recorded the step
    assert old != recorded and pickle.loads(old) == ItemStart(status=Status.RUNNING, round=2)
