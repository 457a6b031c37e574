"""Live item state and its transitions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlmodel import Session, col, select

from agentsprint.domain import Item, Status, can_transition
from agentsprint.store.events import append_event
from agentsprint.store.tables import ItemStateRow, ItemTransitionRow


class TransitionError(Exception):
    """A status change the status machine does not allow."""


@dataclass(frozen=True)
class ItemState:
    item_id: str
    status: Status
    sprint: str | None
    round: int
    reason: str | None
    detail: str | None
    branch: str | None
    updated_at: float


@dataclass(frozen=True)
class Transition:
    item_id: str
    from_status: Status | None
    to_status: Status
    at: float
    actor: str
    reason: str | None


def _state(row: ItemStateRow) -> ItemState:
    return ItemState(row.item_id, Status(row.status), row.sprint, row.round, row.reason, row.detail,
                     row.branch, row.updated_at)


def get_state(session: Session, item_id: str) -> ItemState | None:
    row = session.get(ItemStateRow, item_id)
    return _state(row) if row else None


def snapshot(row: ItemStateRow, item: Item) -> None:
    """Copy the definition fields the retro needs onto the state row."""
    row.title, row.type, row.priority, row.value = item.title, item.type.value, item.priority.value, item.value
    row.budget_json = item.budget.model_dump_json()


def transition(session: Session, item_id: str, to: Status, *, actor: str = "runner", reason: str | None = None,
               detail: str | None = None, run_id: str | None = None, item: Item | None = None,
               round: int | None = None, branch: str | None = None, sprint: str | None = None,
               initial: Status = Status.TODO) -> ItemState:
    """Move an item to `to`, recording the transition and an audit event in the caller's transaction."""
    now = time.time()
    row = session.get(ItemStateRow, item_id)
    is_new = row is None
    if row is None:
        row = ItemStateRow(item_id=item_id, status=initial.value, updated_at=now)
    current = Status(row.status)
    if current != to and not can_transition(current, to):
        raise TransitionError(f"{item_id}: cannot go from {current.value} to {to.value}")
    moved = current != to or is_new
    if moved:
        row.status, row.reason, row.detail, row.updated_at = to.value, reason, detail, now
    if item is not None:
        snapshot(row, item)
    if round is not None:
        row.round = round
    if branch is not None:
        row.branch = branch
    if sprint is not None:
        row.sprint = sprint
    session.add(row)
    if moved:  # staying in the same status is a no-op, so a replayed step records nothing twice
        session.add(ItemTransitionRow(item_id=item_id, from_status=current.value, to_status=to.value, at=now,
                                      actor=actor, reason=reason, run_id=run_id))
        append_event(session, "item.status", item_id=item_id, run_id=run_id, actor=actor,
                     data={"from": current.value, "to": to.value, "reason": reason, "detail": detail})
    session.flush()
    return _state(row)


def transitions(session: Session, item_id: str | None = None) -> list[Transition]:
    query = select(ItemTransitionRow).order_by(col(ItemTransitionRow.at), col(ItemTransitionRow.id))
    if item_id is not None:
        query = query.where(ItemTransitionRow.item_id == item_id)
    return [
        Transition(r.item_id, Status(r.from_status) if r.from_status else None, Status(r.to_status), r.at,
                   r.actor, r.reason)
        for r in session.exec(query).all()
    ]
