"""The store on a real PostgreSQL server (AGENTSPRINT_TEST_PG_URL): migrations, transitions, the event chain,
and `agentsprint list` reading live statuses through the store instead of sqlite3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import postgres_url
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from agentsprint.cli.main import build_app
from agentsprint.domain import Status
from agentsprint.store import Store
from agentsprint.store.engine import MIGRATIONS, migrate
from agentsprint.store.events import verify_chain
from agentsprint.store.items import transition, transitions

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    server = make_url(postgres_url().replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"agentsprint_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_run_once_and_are_idempotent(database_url: str) -> None:
    store = Store(database_url)
    assert store.dialect == "postgresql"
    with store.engine.connect() as conn:
        names = [row[0] for row in conn.execute(text("SELECT name FROM schema_migrations ORDER BY name"))]
    assert names == sorted(name for name, _ in MIGRATIONS)
    assert migrate(store.engine) == []
    store.close()
    again = Store(database_url)  # a second open applies nothing and fails on nothing
    assert migrate(again.engine) == []
    again.close()


def test_transition_and_event_chain(database_url: str) -> None:
    store = Store(database_url)
    with store.session() as session:
        transition(session, "AS-1", Status.PLANNED, actor="runner")
        transition(session, "AS-1", Status.RUNNING, actor="runner", round=1)
        transition(session, "AS-1", Status.AWAITING_REVIEW, actor="runner")
    with store.session() as session:
        moves = [(t.from_status, t.to_status) for t in transitions(session, "AS-1")]
        assert moves == [(Status.TODO, Status.PLANNED), (Status.PLANNED, Status.RUNNING),
                         (Status.RUNNING, Status.AWAITING_REVIEW)]
        assert verify_chain(session) == (3, None, None)
    with store.engine.begin() as conn:
        second = conn.execute(text("SELECT id FROM events ORDER BY id LIMIT 1 OFFSET 1")).scalar_one()
        conn.execute(text("UPDATE events SET actor = 'someone else' WHERE id = :id"), {"id": second})
    with store.session() as session:
        assert verify_chain(session)[:2] == (1, second)
    store.close()


def test_list_reads_live_statuses_from_postgres(database_url: str, git_repo: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("AGENTSPRINT_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(build_app(), ["init"]).exit_code == 0
    assert runner.invoke(build_app(), ["add", "On Postgres"]).exit_code == 0
    store = Store(database_url)
    with store.session() as session:
        transition(session, "AS-1", Status.RUNNING, round=2)
    store.close()
    result = runner.invoke(build_app(), ["list", "--json"])
    assert [(r["id"], r["status"], r["rounds"]) for r in json.loads(result.stdout)] == [("AS-1", "running", 2)]
