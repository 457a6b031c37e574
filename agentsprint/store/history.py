"""What the retro reads: the recorded history of items as typed records, in a few whole-table queries.

Plain SQL through one connection (no ORM objects): the retro of 100,000 model calls has to be read in
well under a second. Every record is immutable and holds only what the retro's metrics use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from agentsprint.store import Store

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
class CallRecord:
    """One model call as charged: provider usage, or the reservation when there is none (`estimated`)."""

    item_id: str
    role: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    usd: float
    cost_kind: str
    shadow: bool
    outcome: str
    retries: int
    timeout: bool
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
class RoundRecord:
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
    calls: list[CallRecord] = field(default_factory=list)
    transitions: list[TransitionRecord] = field(default_factory=list)
    reviews: list[ReviewRecord] = field(default_factory=list)
    escalations: list[EscalationRecord] = field(default_factory=list)
    handoffs: list[HandoffRecord] = field(default_factory=list)
    rounds: list[RoundRecord] = field(default_factory=list)
    policy_blocks: list[tuple[str, float]] = field(default_factory=list)


_ITEMS = text(
    "SELECT s.item_id, s.title, s.type, s.value, s.status, s.reason, s.round, s.budget_json, "
    "b.limit_tokens, b.limit_usd FROM item_state s LEFT JOIN budgets b ON b.scope = 'item:' || s.item_id "
    "ORDER BY s.item_id"
)
_CALLS = text(
    "SELECT item_id, role, model, "
    f"CASE WHEN outcome IN {ESTIMATED_OUTCOMES} THEN estimated_input_tokens ELSE input_tokens END, "
    "cached_input_tokens, "
    f"CASE WHEN outcome IN {ESTIMATED_OUTCOMES} THEN reserved_tokens - estimated_input_tokens "
    "ELSE output_tokens END, "
    f"CASE WHEN outcome IN {ESTIMATED_OUTCOMES} THEN reserved_usd ELSE usd END, "
    f"CASE WHEN outcome IN {ESTIMATED_OUTCOMES} OR usage_anomaly IS NOT NULL "
    "OR (outcome = 'error' AND usd > 0) OR attributes_json LIKE '%charged at reservation%' "
    "THEN 'estimated' ELSE 'measured' END, "
    "scopes_json LIKE '%\"shadow:%', outcome, retries, error LIKE 'timeout:%', started_at "
    "FROM model_calls WHERE item_id IS NOT NULL ORDER BY id"
)
_TRANSITIONS = text("SELECT item_id, from_status, to_status, at, actor FROM item_transitions ORDER BY at, id")
_REVIEWS = text("SELECT item_id, decision, requested_at, decided_at, changed_lines FROM reviews ORDER BY decided_at")
_ESCALATIONS = text("SELECT item_id, reason, created_at, resolved_at, resolution FROM escalations ORDER BY id")
_HANDOFFS = text("SELECT item_id, role, model, valid, at FROM handoffs WHERE item_id IS NOT NULL ORDER BY id")
_ROUNDS = text("SELECT item_id, data_json, at FROM events WHERE kind = 'round' ORDER BY id")
_BLOCKS = text("SELECT item_id, at FROM events WHERE kind = 'policy.block' AND item_id IS NOT NULL ORDER BY id")


def _item(row: Any) -> ItemRecord:
    return ItemRecord(row[0], row[1], row[2], int(row[3] or 0), row[4], row[5], int(row[6] or 0),
                      json.loads(row[7] or "{}"), row[8], row[9])


def _call(row: Any) -> CallRecord:
    return CallRecord(row[0], row[1], row[2], int(row[3] or 0), int(row[4] or 0), max(int(row[5] or 0), 0),
                      float(row[6] or 0.0), row[7], bool(row[8]), row[9], int(row[10] or 0), bool(row[11]),
                      float(row[12]))


def _round(row: Any) -> RoundRecord:
    data = json.loads(row[1])
    lines = int(data.get("added") or 0) + int(data.get("removed") or 0)
    return RoundRecord(row[0], int(data.get("round") or 0), str(data.get("verdict") or ""), lines, float(row[2]))


def _read(conn: Connection) -> History:
    return History(
        items=[_item(r) for r in conn.execute(_ITEMS)],
        calls=[_call(r) for r in conn.execute(_CALLS)],
        transitions=[TransitionRecord(*r) for r in conn.execute(_TRANSITIONS)],
        reviews=[ReviewRecord(r[0], r[1], r[2], r[3], int(r[4] or 0)) for r in conn.execute(_REVIEWS)],
        escalations=[EscalationRecord(*r) for r in conn.execute(_ESCALATIONS)],
        handoffs=[HandoffRecord(r[0], r[1], r[2], bool(r[3]), r[4]) for r in conn.execute(_HANDOFFS)],
        rounds=[_round(r) for r in conn.execute(_ROUNDS) if r[0]],
        policy_blocks=[(r[0], float(r[1])) for r in conn.execute(_BLOCKS)],
    )


def load_history(store: Store) -> History:
    """The whole recorded history of every item, read in one transaction (a consistent snapshot)."""
    with store.session() as session:
        return _read(session.connection())


def load_sprint_record(store: Store, name: str) -> SprintRecord | None:
    """The database's sprint `name` with its items, or None when there is none."""
    with store.session() as session:
        conn = session.connection()
        row = conn.execute(text("SELECT name, tokens, usd, review_hours, started_at, closed_at FROM sprints "
                                "WHERE name = :n"), {"n": name}).first()
        if row is None:
            return None
        ids = [r[0] for r in conn.execute(text("SELECT item_id FROM sprint_items WHERE sprint = :n "
                                               "ORDER BY added_at"), {"n": name})]
    return SprintRecord(row[0], row[1], row[2], row[3], row[4], row[5], ids)


def sprint_names(store: Store) -> list[str]:
    """Names of the database's sprints, oldest first."""
    with store.session() as session:
        return [r[0] for r in session.connection().execute(text("SELECT name FROM sprints ORDER BY created_at"))]
