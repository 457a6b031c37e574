"""Reading the audit chain: events in sequence order as plain tuples, a page at a time.

Plain SQL (no ORM objects): `audit verify` walks a million events in a few seconds, and turning each
row into a SQLModel object would cost more than hashing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import text

from agentsprint.store.core import Store

_COLUMNS = "id, at, kind, item_id, run_id, actor, data_json, prev_hash, hash"


class AuditEvent(NamedTuple):
    """One stored event; `seq` is its sequence number (the row id)."""

    seq: int
    at: float
    kind: str
    item_id: str | None
    run_id: str | None
    actor: str
    data_json: str
    prev_hash: str
    hash: str


def iter_events(store: Store, *, since: float | None = None, item_id: str | None = None,
                batch: int = 50_000) -> Iterator[AuditEvent]:
    """Every event in sequence order, optionally only from `since` on and of one item."""
    mark = "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
    filters = [(f"at >= {mark}", since), (f"item_id = {mark}", item_id)]
    chosen = [(clause, value) for clause, value in filters if value is not None]
    where = " AND ".join([f"id > {mark}"] + [clause for clause, _ in chosen])
    query = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT {int(batch)}"
    last = 0
    while True:
        rows = _fetch(store, query, (last, *(value for _, value in chosen)))
        yield from map(AuditEvent._make, rows)
        if len(rows) < batch:
            return
        last = int(rows[-1][0])  # type: ignore[call-overload]


def _fetch(store: Store, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    """Rows of `query` through the driver's own cursor (SQLAlchemy's result rows cost a third of verify)."""
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(query, params)
        return list(cursor.fetchall())
    finally:
        connection.close()


def event_by_hash(store: Store, digest: str) -> AuditEvent | None:
    """The event whose hash is `digest` (a full scan: only used once verification found a break)."""
    with store.engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM events WHERE hash = :h ORDER BY id LIMIT 1"),
                           {"h": digest}).first()
    return AuditEvent._make(row) if row is not None else None


def event_at(store: Store, seq: int) -> AuditEvent | None:
    """The event with sequence number `seq`, if it exists."""
    with store.engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM events WHERE id = :s"), {"s": seq}).first()
    return AuditEvent._make(row) if row is not None else None
