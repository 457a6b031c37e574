"""What the retro reads: the recorded history of items as typed records, in a few whole-table queries.

Plain SQL (no ORM objects): the retro of 100,000 model calls has to be made in about a second. A
SQLite database is read through the stdlib sqlite3 module, read-only, as `sqlite_direct` does (importing
SQLAlchemy and SQLModel alone took most of that second, measured); other databases go through the
Store. Every record is immutable and holds only what the retro's metrics use.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agentsprint.store.errors import StoreError, check_sqlite_file
from agentsprint.store.sqlite_direct import sqlite_path

Query = Callable[[str, dict[str, Any]], list[Sequence[Any]]]
"""Run one SELECT with named parameters; all its rows."""

ESTIMATED_OUTCOMES = "('interrupted', 'reserved')"
"""Calls charged at their reservation: no provider usage exists for them."""


@dataclass(frozen=True)
class ItemRecord:
    """An item's live state, the definition snapshot it last ran with, and its effective limits."""

    item_id: str
    title: str
    type: str
    value: int
    status: str
    reason: str | None
    round: int
    budget: dict[str, Any]
    limit_tokens: int | None
    limit_usd: float | None


@dataclass(frozen=True)
class SpentCall:
    """Model calls of one item, role, model, cost kind and stretch of time, summed as charged.

    A call is charged its provider usage, or its reservation when there is none (`estimated`). Calls
    are summed in SQL over at most ~400 stretches of the whole history (100,000 rows would cost seconds
    to turn into objects); `at` is the first call's start in the group.
    """

    item_id: str
    role: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    usd: float
    cost_kind: str
    shadow: bool
    calls: int
    errors: int
    retries: int
    timeouts: int
    at: float

    @property
    def tokens(self) -> int:
        """Input plus output tokens: what budgets count (cached input is part of input)."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class TransitionRecord:
    item_id: str
    from_status: str | None
    to_status: str
    at: float
    actor: str


@dataclass(frozen=True)
class ReviewRecord:
    item_id: str
    decision: str
    requested_at: float | None
    decided_at: float
    changed_lines: int


@dataclass(frozen=True)
class EscalationRecord:
    item_id: str
    reason: str
    created_at: float
    resolved_at: float | None
    resolution: str | None


@dataclass(frozen=True)
class HandoffRecord:
    item_id: str
    role: str
    model: str
    valid: bool
    at: float


@dataclass(frozen=True)
class RoundVerdict:
    """One QA round of an item: its verdict and the lines its diff changed."""

    item_id: str
    round: int
    verdict: str
    changed_lines: int
    at: float


@dataclass(frozen=True)
class SprintRecord:
    """A sprint as the database knows it (the file in backlog/sprints/ may say more)."""

    name: str
    tokens: int | None
    usd: float | None
    review_hours: float | None
    started_at: float | None
    closed_at: float | None
    items: list[str]


@dataclass(frozen=True)
class History:
    """Everything recorded about items, oldest first in each list."""

    items: list[ItemRecord] = field(default_factory=list)
    calls: list[SpentCall] = field(default_factory=list)
    transitions: list[TransitionRecord] = field(default_factory=list)
    reviews: list[ReviewRecord] = field(default_factory=list)
    escalations: list[EscalationRecord] = field(default_factory=list)
    handoffs: list[HandoffRecord] = field(default_factory=list)
    rounds: list[RoundVerdict] = field(default_factory=list)
    policy_blocks: list[tuple[str, float]] = field(default_factory=list)


_ITEMS = (
    "SELECT s.item_id, s.title, s.type, s.value, s.status, s.reason, s.round, s.budget_json, "
    "b.limit_tokens, b.limit_usd FROM item_state s LEFT JOIN budgets b ON b.scope = 'item:' || s.item_id "
    "ORDER BY s.item_id"
)
ESTIMATED = f"outcome IN {ESTIMATED_OUTCOMES}"
_NO_USAGE = ("(outcome = 'ok' AND input_tokens = estimated_input_tokens AND output_tokens = granted_max_tokens "
             "AND usd = reserved_usd)")
"""A reply without usage, which the gateway charges exactly its reservation."""
_KIND = (f"CASE WHEN {ESTIMATED} OR (outcome = 'error' AND usd > 0) OR {_NO_USAGE} {{anomalies}}"
         "THEN 'estimated' ELSE 'measured' END")
"""How a call's cost is known, from the columns stored before request_json only: reading the ones after
it (attributes_json, usage_anomaly) makes SQLite walk every row's overflow pages, which doubled the
query's time on realistic rows (measured). Calls with a usage anomaly are named by their audit events."""
_ANOMALIES = "SELECT data_json FROM events WHERE kind = 'model.usage_anomaly'"
_SHADOW = "scopes_json LIKE '%\"shadow:%'"
_CALLS = (
    f"SELECT item_id, role, model, {{kind}} AS kind, {_SHADOW} AS shadow, "
    f"SUM(CASE WHEN {ESTIMATED} THEN estimated_input_tokens ELSE input_tokens END), SUM(cached_input_tokens), "
    f"SUM(CASE WHEN {ESTIMATED} THEN reserved_tokens - estimated_input_tokens ELSE output_tokens END), "
    f"SUM(CASE WHEN {ESTIMATED} THEN reserved_usd ELSE usd END), COUNT(*), "
    "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), SUM(retries), "
    "SUM(CASE WHEN error LIKE 'timeout:%' THEN 1 ELSE 0 END), MIN(started_at) "
    "FROM model_calls WHERE item_id IS NOT NULL AND started_at >= :since "
    "GROUP BY item_id, role, model, kind, shadow, CAST((started_at - :first) / :stretch AS INTEGER) "
    "ORDER BY MIN(started_at)"
)
_SPAN = "SELECT MIN(started_at), MAX(started_at) FROM model_calls WHERE item_id IS NOT NULL"
STRETCHES = 400
"""Stretches of time the calls are summed over (the burn-up chart's resolution)."""
REAL = "(run_id IS NULL OR run_id NOT IN (SELECT id FROM runs WHERE mode = 'shadow'))"
"""Records of real runs: a shadow run's status changes, rounds and handoffs are never the sprint's."""
_TRANSITIONS = f"SELECT item_id, from_status, to_status, at, actor FROM item_transitions WHERE {REAL} ORDER BY at, id"
_REVIEWS = "SELECT item_id, decision, requested_at, decided_at, changed_lines FROM reviews ORDER BY decided_at"
_ESCALATIONS = ("SELECT item_id, reason, created_at, resolved_at, resolution FROM escalations "
                "WHERE resolution IS NULL OR resolution != 'shadow' ORDER BY id")
_HANDOFFS = f"SELECT item_id, role, model, valid, at FROM handoffs WHERE item_id IS NOT NULL AND {REAL} ORDER BY id"
_ROUNDS = f"SELECT item_id, data_json, at FROM events WHERE kind = 'round' AND {REAL} ORDER BY id"
_BLOCKS = f"SELECT item_id, at FROM events WHERE kind = 'policy.block' AND item_id IS NOT NULL AND {REAL} ORDER BY id"


def _item(row: Any) -> ItemRecord:
    return ItemRecord(row[0], row[1], row[2], int(row[3] or 0), row[4], row[5], int(row[6] or 0),
                      json.loads(row[7] or "{}"), row[8], row[9])


def _call(row: Any) -> SpentCall:
    return SpentCall(row[0], row[1], row[2], int(row[5] or 0), int(row[6] or 0), max(int(row[7] or 0), 0),
                      float(row[8] or 0.0), row[3], bool(row[4]), int(row[9]), int(row[10] or 0), int(row[11] or 0),
                      int(row[12] or 0), float(row[13]))


def _calls(query: Query, since: float | None) -> list[SpentCall]:
    spans = query(_SPAN, {})
    if not spans or spans[0][0] is None:
        return []
    first, last = float(spans[0][0]), float(spans[0][1])
    stretch = max((last - first) / STRETCHES, 1e-6)
    params = {"since": since if since is not None else first, "first": first, "stretch": stretch}
    ids = sorted({int(json.loads(r[0]).get("call_id") or 0) for r in query(_ANOMALIES, {})})
    kind = _KIND.format(anomalies=f"OR id IN ({', '.join(map(str, ids))}) " if ids else "")
    return [_call(r) for r in query(_CALLS.format(kind=kind), params)]


def _round(row: Any) -> RoundVerdict:
    data = json.loads(row[1])
    lines = int(data.get("added") or 0) + int(data.get("removed") or 0)
    return RoundVerdict(row[0], int(data.get("round") or 0), str(data.get("verdict") or ""), lines, float(row[2]))


def read_history(query: Query, since: float | None = None) -> History:
    """The recorded history of every item (model calls from `since` on)."""
    return History(
        items=[_item(r) for r in query(_ITEMS, {})],
        calls=_calls(query, since),
        transitions=[TransitionRecord(*r) for r in query(_TRANSITIONS, {})],
        reviews=[ReviewRecord(r[0], r[1], r[2], r[3], int(r[4] or 0)) for r in query(_REVIEWS, {})],
        escalations=[EscalationRecord(*r) for r in query(_ESCALATIONS, {})],
        handoffs=[HandoffRecord(r[0], r[1], r[2], bool(r[3]), r[4]) for r in query(_HANDOFFS, {})],
        rounds=[_round(r) for r in query(_ROUNDS, {}) if r[0]],
        policy_blocks=[(r[0], float(r[1])) for r in query(_BLOCKS, {})],
    )


def read_sprint(query: Query, name: str) -> SprintRecord | None:
    """The database's sprint `name` with its items, or None when there is none."""
    rows = query("SELECT name, tokens, usd, review_hours, started_at, closed_at FROM sprints WHERE name = :n",
                 {"n": name})
    if not rows:
        return None
    ids = [r[0] for r in query("SELECT item_id FROM sprint_items WHERE sprint = :n ORDER BY added_at", {"n": name})]
    row = rows[0]
    return SprintRecord(row[0], row[1], row[2], row[3], row[4], row[5], ids)


def read_sprint_names(query: Query) -> list[str]:
    """Names of the database's sprints, oldest first."""
    return [r[0] for r in query("SELECT name FROM sprints ORDER BY created_at", {})]


T = TypeVar("T")


def load_history(url: str, since: float | None = None) -> History:
    """The recorded history of every item in the database at `url` (model calls from `since` on)."""
    return _read(url, lambda query: read_history(query, since))


def load_sprint_record(url: str, name: str) -> SprintRecord | None:
    """The sprint `name` of the database at `url`, or None."""
    return _read(url, lambda query: read_sprint(query, name))


def sprint_names(url: str) -> list[str]:
    """Names of the sprints of the database at `url`, oldest first."""
    return _read(url, read_sprint_names)


def _read(url: str, reading: Callable[[Query], T]) -> T:
    """`reading` on the database: SQLite read-only through sqlite3; the Store (which migrates) otherwise,
    or when the SQLite file predates a migration the queries need."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return reading(lambda sql, params: [])  # no database yet: nothing recorded
    if path is not None:
        check_sqlite_file(path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            conn.execute("BEGIN")  # one snapshot for every query
            return reading(lambda sql, params: conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError:
            pass  # an older schema: the Store migrates it
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: {exc}") from None
        finally:
            conn.close()
    return _read_store(url, reading)


def _read_store(url: str, reading: Callable[[Query], T]) -> T:
    from sqlalchemy import text

    from agentsprint.store import Store

    store = Store(url)
    try:
        with store.session() as session:
            conn = session.connection()
            return reading(lambda sql, params: list(conn.execute(text(sql), params).all()))
    finally:
        store.close()
