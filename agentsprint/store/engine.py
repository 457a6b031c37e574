"""Engine creation and named, versioned migrations applied on open."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, create_engine

from agentsprint.redaction import map_strings, redact_stored, secret_texts
from agentsprint.store import tables  # noqa: F401  (defines the tables the migrations create)
from agentsprint.store.errors import StoreError, check_sqlite_file

__all__ = ["MIGRATIONS", "StoreError", "make_engine", "migrate"]

_WRITE = re.compile(r"\s*(?:INSERT|UPDATE)\b", re.IGNORECASE)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # let SQLAlchemy's begin() below decide when a transaction starts
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: read-then-write transactions (reservations, the
    # event chain) wait on busy_timeout instead of failing with "database is locked" on upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _redacted(parameters: Any, needles: tuple[str, ...]) -> Any:
    return map_strings(parameters, lambda text: redact_stored(text, needles))


def _redact_writes(_conn: Connection, _cursor: object, statement: str, parameters: Any, _context: object,
                   _executemany: bool) -> tuple[str, Any]:
    """Every text an INSERT or UPDATE writes is redacted here, whichever table or column: one choke
    point, so a new column cannot forget it (DESIGN section 10). Statements carry values as bound
    parameters, never inline."""
    if not _WRITE.match(statement):
        return statement, parameters
    return statement, _redacted(parameters, secret_texts())


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            check_sqlite_file(Path(path))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "before_cursor_execute", _redact_writes, retval=True)
    return engine


_INITIAL_TABLES = ["item_state", "item_transitions", "sprints", "sprint_items", "runs", "budgets", "model_calls",
                   "handoffs", "reviews", "escalations", "events", "workers"]


def _create(conn: Connection, *names: str) -> None:
    SQLModel.metadata.create_all(conn, tables=[SQLModel.metadata.tables[n] for n in names])


def _m001_initial(conn: Connection) -> None:
    _create(conn, *_INITIAL_TABLES)


def _m002_webhook_outbox(conn: Connection) -> None:
    _create(conn, "webhook_outbox")


def _m003_usage_anomaly(conn: Connection) -> None:
    # a new database has the column already: 001 creates its tables from today's models
    if "usage_anomaly" not in {column["name"] for column in inspect(conn).get_columns("model_calls")}:
        conn.execute(text("ALTER TABLE model_calls ADD COLUMN usage_anomaly TEXT"))


def _m004_one_ok_call_per_key(conn: Connection) -> None:
    """At most one `ok` model call per idempotency key, enforced by a unique partial index.

    Rows a database already holds twice (two runs executed the same step) keep the first as `ok`;
    the later ones become `duplicate`: they were paid for, so their spend stays.
    """
    conn.execute(text(
        "UPDATE model_calls SET outcome = 'duplicate' WHERE outcome = 'ok' AND idempotency_key IS NOT NULL "
        "AND id > (SELECT min(first.id) FROM model_calls AS first WHERE first.outcome = 'ok' "
        "AND first.idempotency_key = model_calls.idempotency_key)"))
    conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS {ONE_OK_CALL_INDEX} ON model_calls (idempotency_key) "
                      "WHERE outcome = 'ok'"))


def _m005_run_lock(conn: Connection) -> None:
    _create(conn, "run_lock")


ONE_OK_CALL_INDEX = "ux_model_calls_ok_idempotency_key"

# Append only: a released migration is never edited; later schema changes add a new named step.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("001_initial", _m001_initial),
    ("002_webhook_outbox", _m002_webhook_outbox),
    ("003_usage_anomaly", _m003_usage_anomaly),
    ("004_one_ok_call_per_key", _m004_one_ok_call_per_key),
    ("005_run_lock", _m005_run_lock),
]


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations this database has not seen yet; returns their names."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
        if not inspect(conn).has_table("schema_migrations"):
            SQLModel.metadata.tables["schema_migrations"].create(conn)
        done = {row[0] for row in conn.execute(text("SELECT name FROM schema_migrations"))}
        for name, step in MIGRATIONS:
            if name in done:
                continue
            step(conn)
            conn.execute(
                text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :t)"),
                {"n": name, "t": time.time()},
            )
            applied_now.append(name)
    return applied_now
