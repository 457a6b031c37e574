"""The append-only, hash-chained event log (the audit trail)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from agentsprint.redaction import redact_value
from agentsprint.store.tables import EventRow

GENESIS = "0" * 64


def canonical(payload: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, at: float, kind: str, item_id: str | None, run_id: str | None,
               actor: str, data_json: str) -> str:
    """sha256(prev_hash + canonical JSON of the event)."""
    body = canonical(
        {"at": at, "kind": kind, "item_id": item_id, "run_id": run_id, "actor": actor, "data": json.loads(data_json)}
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.connection().execute(text("SELECT pg_advisory_xact_lock(727002)"))
    # SQLite: every transaction is BEGIN IMMEDIATE (see engine.py), which already serializes writers.


_LAST_HASH = text("SELECT hash FROM events ORDER BY id DESC LIMIT 1")
_INSERT = text("INSERT INTO events (at, kind, item_id, run_id, actor, data_json, prev_hash, hash) "
               "VALUES (:at, :kind, :item_id, :run_id, :actor, :data_json, :prev_hash, :hash) RETURNING id")


def append_event(session: Session, kind: str, *, item_id: str | None = None, run_id: str | None = None,
                 actor: str = "system", data: dict[str, Any] | None = None) -> EventRow:
    """Append one event inside the caller's transaction (so a state change and its event commit together).

    Plain SQL on the session's connection: an ORM flush per event cost about 0.5 ms a model call (measured).
    """
    _lock_chain(session)
    session.flush()  # the caller's pending rows first, as they were made before the event
    conn = session.connection()
    prev = conn.execute(_LAST_HASH).scalar() or GENESIS
    at = round(time.time(), 6)
    data_json = canonical(redact_value(data or {}))  # hashed as stored: the store redacts every write
    digest = event_hash(prev, at, kind, item_id, run_id, actor, data_json)
    fields: dict[str, Any] = {"at": at, "kind": kind, "item_id": item_id, "run_id": run_id, "actor": actor,
                              "data_json": data_json, "prev_hash": prev, "hash": digest}
    return EventRow(id=conn.execute(_INSERT, fields).scalar_one(), **fields)


def verify_chain(session: Session, batch: int = 5000) -> tuple[int, int | None, str | None]:
    """Recompute the chain: (events checked, id of the first bad event or None, what is wrong)."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.exec(
            select(EventRow).where(col(EventRow.id) > last_id).order_by(col(EventRow.id)).limit(batch)
        ).all()
        if not rows:
            return checked, None, None
        for row in rows:
            if row.prev_hash != prev:
                return checked, row.id, "prev_hash does not match the previous event's hash"
            expected = event_hash(prev, row.at, row.kind, row.item_id, row.run_id, row.actor, row.data_json)
            if expected != row.hash:
                return checked, row.id, "hash does not match the event's content"
            prev = row.hash
            checked += 1
            last_id = row.id or last_id
