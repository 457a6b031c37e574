"""Budget rows and model-call rows: reservations taken and settled atomically.

A reservation is one transaction of conditional UPDATEs, one per scope (in sorted order, so two
transactions never wait on each other in opposite orders), plus the `model_calls` row that records it.
If any scope lacks room the whole transaction rolls back. SQLite runs every transaction as
BEGIN IMMEDIATE (see engine.py); PostgreSQL re-checks each UPDATE's WHERE clause against the row
version it locked, so on both, two processes cannot both take the last tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from agentsprint.store import Store
from agentsprint.store.events import append_event
from agentsprint.store.tables import ModelCallRow

if TYPE_CHECKING:
    from agentsprint.store.sqlite_direct import ItemBudgets

_RESERVE = text(
    "UPDATE budgets SET reserved_tokens = reserved_tokens + :t, reserved_usd = reserved_usd + :u, "
    "updated_at = :now WHERE scope = :s "
    "AND (limit_tokens IS NULL OR spent_tokens + reserved_tokens + :t <= limit_tokens) "
    "AND (limit_usd IS NULL OR spent_usd + reserved_usd + :u <= limit_usd)"
)
_SETTLE = text(
    "UPDATE budgets SET spent_tokens = spent_tokens + :st, spent_usd = spent_usd + :su, "
    "reserved_tokens = reserved_tokens - :rt, reserved_usd = reserved_usd - :ru, updated_at = :now "
    "WHERE scope = :s"
)
_INSERT = text(
    "INSERT INTO budgets (scope, limit_tokens, limit_usd, spent_tokens, spent_usd, reserved_tokens, "
    "reserved_usd, updated_at) VALUES (:s, :lt, :lu, 0, 0, :t, :u, :now) ON CONFLICT (scope) DO NOTHING"
)
_UPSERT_LIMITS = text(
    "INSERT INTO budgets (scope, limit_tokens, limit_usd, spent_tokens, spent_usd, reserved_tokens, "
    "reserved_usd, updated_at) VALUES (:s, :lt, :lu, 0, 0, 0, 0, :now) ON CONFLICT (scope) DO UPDATE SET "
    "limit_tokens = excluded.limit_tokens, limit_usd = excluded.limit_usd, updated_at = excluded.updated_at"
)
_RAISE_LIMITS = text(
    "UPDATE budgets SET limit_tokens = limit_tokens + :lt, limit_usd = limit_usd + :lu, updated_at = :now "
    "WHERE scope = :s"
)


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """A `model_calls` row: as it is inserted (reserved or refused: no id yet, the table's defaults) and as
    `model_calls()` reads it back."""

    started_at: float
    id: int | None = None
    item_id: str | None = None
    run_id: str | None = None
    round: int = 0
    role: str = ""
    model: str = ""
    scopes_json: str = "[]"
    requested_max_tokens: int = 0
    granted_max_tokens: int = 0
    estimated_input_tokens: int = 0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_ms: float | None = None
    retries: int = 0
    idempotency_key: str | None = None
    outcome: str = "reserved"
    error: str | None = None
    finished_at: float | None = None
    request_json: str = "{}"
    response_json: str = "{}"
    attributes_json: str = "{}"
    usage_anomaly: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallSettlement:
    """What settling a call writes to its `model_calls` row; a column left None keeps its value."""

    outcome: str
    error: str | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    usd: float | None = None
    latency_ms: float | None = None
    retries: int | None = None
    response_json: str | None = None
    attributes_json: str | None = None
    usage_anomaly: str | None = None
    finished_at: float | None = None

    def columns(self) -> dict[str, Any]:
        """{column: value} of what this settlement sets."""
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class BudgetState:
    """Limits (None = no cap), settled spend and open reservations of one scope."""

    scope: str
    limit_tokens: int | None = None
    limit_usd: float | None = None
    spent_tokens: int = 0
    spent_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0

    @property
    def left_tokens(self) -> int | None:
        if self.limit_tokens is None:
            return None
        return self.limit_tokens - self.spent_tokens - self.reserved_tokens

    @property
    def left_usd(self) -> float | None:
        if self.limit_usd is None:
            return None
        return self.limit_usd - self.spent_usd - self.reserved_usd


class _ScopeFull(Exception):
    """A scope lacks room for a reservation (raised inside its transaction to roll it back)."""


def ensure_budget(store: Store, scope: str, tokens: int | None, usd: float | None) -> None:
    """Set the limits of `scope` exactly (creating it); None means no cap."""
    with store.session() as session:
        session.connection().execute(
            _UPSERT_LIMITS, {"s": scope, "lt": tokens, "lu": usd, "now": time.time()}
        )


def open_budget(store: Store, scope: str, tokens: int | None, usd: float | None) -> None:
    """Create `scope` with these limits unless it exists; an existing scope keeps its limits and spend."""
    with store.session() as session:
        session.connection().execute(
            _INSERT, {"s": scope, "lt": tokens, "lu": usd, "t": 0, "u": 0.0, "now": time.time()}
        )


def add_budget(store: Store, scope: str, tokens: int | None, usd: float | None, actor: str = "system",
               base: tuple[int | None, float | None] = (None, None)) -> None:
    """Raise the limits of `scope` by `tokens` and `usd` (an uncapped limit stays uncapped).

    A scope without a row yet starts from `base` (the item's own limits), so a top-up adds to them. The
    top-up is a `budget.added` event: `show` and `list` report the original limit and the additions.
    """
    now = time.time()
    with store.session() as session:
        conn = session.connection()
        new_limits = {"lt": base[0] if tokens is None or base[0] is not None else 0,
                      "lu": base[1] if usd is None or base[1] is not None else 0.0}
        conn.execute(_INSERT, {"s": scope, **new_limits, "t": 0, "u": 0.0, "now": now})
        conn.execute(_RAISE_LIMITS, {"s": scope, "lt": tokens or 0, "lu": usd or 0.0, "now": now})
        item_id = scope.removeprefix("item:") if scope.startswith("item:") else None
        append_event(session, "budget.added", item_id=item_id, actor=actor,
                     data={"scope": scope, "tokens": tokens or 0, "usd": usd or 0.0})


_SELECT = text(
    "SELECT scope, limit_tokens, limit_usd, spent_tokens, spent_usd, reserved_tokens, reserved_usd "
    "FROM budgets WHERE scope IN :scopes"
).bindparams(bindparam("scopes", expanding=True))


def _read(conn: Connection, scopes: list[str]) -> dict[str, BudgetState]:
    states = {scope: BudgetState(scope) for scope in scopes}
    if scopes:
        for row in conn.execute(_SELECT, {"scopes": scopes}):
            states[row[0]] = BudgetState(*row)
    return states


def budgets(store: Store, scopes: Iterable[str]) -> dict[str, BudgetState]:
    """The state of each scope; a scope without a row is uncapped and unspent."""
    with store.session() as session:
        return _read(session.connection(), sorted(set(scopes)))


def _reserve_scope(conn: Connection, scope: str, tokens: int, usd: float, now: float) -> None:
    params = {"s": scope, "t": tokens, "u": usd, "now": now}
    if conn.execute(_RESERVE, params).rowcount == 1:
        return
    inserted = conn.execute(_INSERT, {**params, "lt": None, "lu": None})
    if inserted.rowcount != 1:
        raise _ScopeFull(scope)


def _insert_call(conn: Connection, record: CallRecord) -> int:
    values = {name: value for name, value in vars(record).items() if name != "id" or value is not None}
    names = sorted(values)
    statement = text(
        f"INSERT INTO model_calls ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) "
        "RETURNING id"
    )
    return int(conn.execute(statement, values).scalar_one())


def reserve_fitting(
    store: Store,
    scopes: Iterable[str],
    decide: Callable[[dict[str, BudgetState]], CallRecord],
) -> int | None:
    """Read the scopes, then reserve the call `decide` makes (its reserved tokens and USD) in the same transaction.

    Returns the call's id, or None when a conditional update found no room (a concurrent reservation
    won; PostgreSQL only, since SQLite's BEGIN IMMEDIATE already serializes the read and the update).
    An exception from `decide` rolls the transaction back and propagates.
    """
    scope_list = sorted(set(scopes))
    now = time.time()
    try:
        with store.session() as session:
            conn = session.connection()
            call = decide(_read(conn, scope_list))
            for scope in scope_list:
                _reserve_scope(conn, scope, call.reserved_tokens, call.reserved_usd, now)
            return _insert_call(conn, replace(call, outcome="reserved"))
    except _ScopeFull:
        return None


def settle(
    store: Store,
    call_id: int,
    spent_tokens: int,
    spent_usd: float,
    settlement: CallSettlement,
    event: dict[str, Any],
) -> bool:
    """Move a call's reservation to spend and record its outcome and audit event; False if already settled.

    A second `ok` under an idempotency key already settled `ok` (two executions of one step) breaks the
    database's unique index (migration 004): that call is settled `duplicate` instead, its spend kept
    (the provider answered it), and DuplicateSettlement tells the caller to use the first reply.
    """
    try:
        return _settle(store, call_id, spent_tokens, spent_usd, settlement, event)
    except IntegrityError:
        if settlement.outcome != "ok":
            raise
    _settle(store, call_id, spent_tokens, spent_usd, replace(settlement, outcome="duplicate", error=DUPLICATE_NOTE),
            {**event, "outcome": "duplicate"})
    raise DuplicateSettlement(call_id)


DUPLICATE_NOTE = "a call under this idempotency key was already settled ok: the same step ran twice"


class DuplicateSettlement(Exception):
    """The call was settled `duplicate`: another call under its idempotency key is the `ok` one."""


def _settle(store: Store, call_id: int, spent_tokens: int, spent_usd: float, settlement: CallSettlement,
            event: dict[str, Any]) -> bool:
    now = time.time()
    with store.session() as session:
        conn = session.connection()
        values = {"finished_at": now, **settlement.columns()}
        assignments = ", ".join(f"{name} = :{name}" for name in sorted(values))
        row = conn.execute(
            text(
                f"UPDATE model_calls SET {assignments} WHERE id = :call_id AND outcome = 'reserved' "
                "RETURNING reserved_tokens, reserved_usd, scopes_json"
            ),
            {**values, "call_id": call_id},
        ).first()
        if row is None:
            return False
        for scope in sorted(set(json.loads(row[2]))):
            conn.execute(
                _SETTLE,
                {"s": scope, "st": spent_tokens, "su": spent_usd, "rt": row[0], "ru": row[1], "now": now},
            )
        _append(session, event)
    return True


_ORPHANS = text("SELECT id, reserved_tokens, reserved_usd, run_id, role, model FROM model_calls "
                "WHERE item_id = :item AND outcome = 'reserved' ORDER BY id")
ORPHAN_NOTE = "its process ended while the call was in flight; charged at its reservation when the item resumed"


def settle_orphans(store: Store, item_id: str) -> int:
    """Charge the calls of `item_id` left in flight by a process that ended (kill -9, Ctrl-C) at their reservation.

    Called when an execution of the item's workflow starts, when no other execution of it can be
    live: such a reservation is an orphan. Returns how many were settled (outcome `interrupted`).
    """
    with store.session() as session:
        rows = session.connection().execute(_ORPHANS, {"item": item_id}).all()
    settled = 0
    for call_id, tokens, usd, run_id, role, model in rows:
        event = {"item_id": item_id, "run_id": run_id, "role": role, "model": model, "outcome": "interrupted",
                 "call_id": call_id, "spent_tokens": tokens, "usd": usd, "charged": True}
        settled += _settle(store, int(call_id or 0), int(tokens), float(usd),
                           CallSettlement(outcome="interrupted", error=ORPHAN_NOTE), event)
    return settled


def record_call(store: Store, record: CallRecord, event: dict[str, Any]) -> int:
    """Record a call that reserved nothing (refused before any request) with its audit event."""
    with store.session() as session:
        call_id = _insert_call(session.connection(), record)
        _append(session, {**event, "call_id": call_id})
    return call_id


def _append(session: Any, event: dict[str, Any]) -> None:
    append_event(
        session,
        "model.call",
        item_id=event.get("item_id"),
        run_id=event.get("run_id"),
        actor=f"agent:{event.get('role', '')}",
        data=event,
    )


def record_anomaly(store: Store, event: dict[str, Any]) -> None:
    """A `model.usage_anomaly` event: the provider reported usage that cannot be right."""
    with store.session() as session:
        append_event(session, "model.usage_anomaly", item_id=event.get("item_id"), run_id=event.get("run_id"),
                     actor=f"agent:{event.get('role', '')}", data=event)


def usage_anomalies(store: Store, run_id: str) -> list[str]:
    """One warning line per usage anomaly recorded in run `run_id`."""
    from agentsprint.store.tables import EventRow

    with store.session() as session:
        rows = session.exec(select(EventRow.data_json).where(EventRow.kind == "model.usage_anomaly",
                                                             EventRow.run_id == run_id)
                            .order_by(col(EventRow.id))).all()
    found = [json.loads(row) for row in rows]
    return [f"{d.get('item_id')}: {d.get('role')} call {d.get('call_id')} ({d.get('model')}): usage anomaly: "
            f"{d.get('anomaly')}; charged {d.get('charged_tokens'):,} tokens" for d in found]


def settled_call(store: Store, idempotency_key: str) -> tuple[int, str] | None:
    """(id, response_json) of the latest call settled "ok" under this idempotency key, if any."""
    with store.session() as session:
        row = session.exec(
            select(ModelCallRow.id, ModelCallRow.response_json)
            .where(ModelCallRow.idempotency_key == idempotency_key, ModelCallRow.outcome == "ok")
            .order_by(col(ModelCallRow.id).desc())
            .limit(1)
        ).first()
    return (int(row[0]), row[1]) if row is not None and row[0] is not None else None


def model_calls(store: Store, item_id: str | None = None) -> list[CallRecord]:
    """Recorded model calls (all, or one item's), oldest first."""
    with store.session() as session:
        query = select(ModelCallRow).order_by(col(ModelCallRow.id))
        if item_id is not None:
            query = query.where(ModelCallRow.item_id == item_id)
        return [CallRecord(**row.model_dump()) for row in session.exec(query).all()]


def item_budgets(store: Store) -> ItemBudgets:
    """Limits, spend and top-ups of every item (and shadow) scope: what `show` and `list` report."""
    from agentsprint.store.sqlite_direct import ADDED_SQL, BUDGETS_SQL, ItemBudgets

    with store.session() as session:
        conn = session.connection()
        return ItemBudgets.from_rows(conn.execute(text(BUDGETS_SQL)).all(), conn.execute(text(ADDED_SQL)).all())
