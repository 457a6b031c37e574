"""What done items cost: the history forecasts are made from (tokens, USD, rounds, changed lines, wall time).

Plain SQL that SQLite and PostgreSQL both read; SQLite goes through the stdlib sqlite3 module so that
`list` and `show` do not pay for importing SQLAlchemy (see sqlite_direct.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from agentsprint.domain import DoneRecord
from agentsprint.store.errors import StoreError, check_sqlite_file
from agentsprint.store.sqlite_direct import sqlite_path

SPEND_SQL = ("SELECT s.item_id, s.type, s.round, s.paused_seconds, b.spent_tokens, b.spent_usd FROM item_state s "
             "LEFT JOIN budgets b ON b.scope = 'item:' || s.item_id WHERE s.status = 'done'")
WALL_SQL = ("SELECT t.item_id, MIN(CASE WHEN t.to_status = 'running' THEN t.at END), "
            "MAX(CASE WHEN t.from_status = 'running' AND t.to_status IN ('awaiting_review', 'done') THEN t.at END) "
            "FROM item_transitions t JOIN item_state s ON s.item_id = t.item_id WHERE s.status = 'done' "
            "GROUP BY t.item_id")
ROUNDS_SQL = ("SELECT e.item_id, e.data_json FROM events e JOIN item_state s ON s.item_id = e.item_id "
              "WHERE e.kind = 'round' AND s.status = 'done' ORDER BY e.id")

STATUS_SQL = "SELECT item_id, status FROM item_state"
SCOPES_SQL = "SELECT scope, spent_tokens, spent_usd FROM budgets WHERE scope LIKE 'sprint:%' OR scope LIKE 'epic:%'"
ALL_ROUNDS_SQL = "SELECT item_id, data_json FROM events WHERE kind = 'round' ORDER BY id"

Query = Callable[[str], Sequence[Sequence[Any]]]
Result = TypeVar("Result")


def done_history(url: str) -> list[DoneRecord]:
    """One record per done item of the database at `url` (none when it does not exist yet)."""
    return read(url, records, [])


def live_statuses(url: str) -> dict[str, str]:
    """{item id: live status} of every item the database knows."""
    return read(url, lambda query: {row[0]: row[1] for row in query(STATUS_SQL)}, {})


def scope_spend(url: str) -> dict[str, tuple[int, float]]:
    """{scope: (spent tokens, spent USD)} of every sprint and epic budget scope."""
    return read(url, lambda query: {r[0]: (int(r[1] or 0), float(r[2] or 0.0)) for r in query(SCOPES_SQL)}, {})


def last_changed_lines(url: str) -> dict[str, int]:
    """{item id: added plus removed lines of its last round} of every item with a recorded round."""
    return read(url, lambda query: _changed_lines(query(ALL_ROUNDS_SQL)), {})


def read(url: str, reader: Callable[[Query], Result], empty: Result) -> Result:
    """`reader` run on the database at `url`: stdlib sqlite3 for SQLite, the store otherwise."""
    path = sqlite_path(url)
    if path is None:
        return _from_store(url, reader)
    if not path.is_file():
        return empty
    check_sqlite_file(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return reader(lambda sql: conn.execute(sql).fetchall())
    except sqlite3.OperationalError:
        return empty
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from None
    finally:
        conn.close()


def _from_store(url: str, reader: Callable[[Query], Result]) -> Result:
    from agentsprint.store import Store

    store = Store(url)
    try:
        with store.session() as session:
            connection = session.connection()
            return reader(lambda sql: list(connection.exec_driver_sql(sql).fetchall()))
    finally:
        store.close()


def records(query: Query) -> list[DoneRecord]:
    """The records from the three queries, in item id order."""
    walls = {row[0]: (row[1], row[2]) for row in query(WALL_SQL)}
    lines = _changed_lines(query(ROUNDS_SQL))
    found = []
    for item_id, type_, rounds, paused, tokens, usd in query(SPEND_SQL):
        started, ended = walls.get(item_id, (None, None))
        wall = None if started is None or ended is None else max(0.0, ended - started - (paused or 0.0))
        found.append(DoneRecord(item_id, type_, int(tokens or 0), float(usd or 0.0), int(rounds or 0),
                                lines.get(item_id), wall))
    return sorted(found, key=lambda r: r.item_id)


def _changed_lines(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Added plus removed lines of each item's last recorded round."""
    last: dict[str, int] = {}
    for item_id, data_json in rows:
        data = json.loads(data_json)
        if isinstance(data, dict) and ("added" in data or "removed" in data):
            last[item_id] = int(data.get("added") or 0) + int(data.get("removed") or 0)
    return last
