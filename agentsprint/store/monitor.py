"""What the run monitor shows: items in flight with their last tool call, gates and spend, and open runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from agentsprint.store import Store
from agentsprint.store.ledger import BudgetState, budgets
from agentsprint.store.tables import EventRow, ItemStateRow, RunRow

IN_FLIGHT = ("running", "planned")


@dataclass(frozen=True)
class RunningItem:
    """One item a run is executing, as the store last recorded it."""

    item_id: str
    status: str
    round: int
    role: str
    last_tool: str
    gates: list[dict[str, Any]]
    budget: BudgetState
    updated_at: float


@dataclass(frozen=True)
class OpenRun:
    """A run the store has not seen finish."""

    run_id: str
    started_at: float
    host: str
    pid: int
    mode: str


def running_items(store: Store) -> list[RunningItem]:
    """Items running or planned by a run, oldest change first."""
    with store.session() as session:
        rows = session.exec(select(ItemStateRow).where(col(ItemStateRow.status).in_(IN_FLIGHT))
                            .order_by(col(ItemStateRow.updated_at))).all()
        found = [(row, _last(session, row.item_id, "tool.call"), _last(session, row.item_id, "round"))
                 for row in rows]
    spend = budgets(store, [f"item:{row.item_id}" for row, _, _ in found])
    return [RunningItem(row.item_id, row.status, row.round, tool.get("role", ""), _tool_text(tool),
                        list(rnd.get("gates", [])), spend[f"item:{row.item_id}"], row.updated_at)
            for row, tool, rnd in found]


def last_roles(store: Store, item_ids: list[str]) -> dict[str, str]:
    """The role of each item's last tool call ('' for an item with none)."""
    with store.session() as session:
        return {item_id: _last(session, item_id, "tool.call").get("role", "") for item_id in item_ids}


def open_runs(store: Store) -> list[OpenRun]:
    """Runs recorded as started and not finished, oldest first."""
    with store.session() as session:
        rows = session.exec(select(RunRow).where(col(RunRow.finished_at).is_(None))
                            .order_by(col(RunRow.started_at))).all()
        return [OpenRun(r.id, r.started_at, r.host, r.pid, r.mode) for r in rows]


def _last(session: Session, item_id: str, kind: str) -> dict[str, Any]:
    row = session.exec(select(EventRow.data_json).where(EventRow.item_id == item_id, EventRow.kind == kind)
                       .order_by(col(EventRow.id).desc())).first()
    return json.loads(row) if row else {}


def _tool_text(call: dict[str, Any]) -> str:
    """`write_file shop/x.py`: the tool and its first argument, shortened."""
    if not call:
        return ""
    first = next(iter((call.get("args") or {}).values()), "")
    return f"{call.get('tool', '')} {str(first)[:60]}".strip()


def item_transitions(store: Store, item_id: str) -> list[tuple[float, str, str, str]]:
    """(at, from, to, actor) of every status change of an item, oldest first."""
    from agentsprint.store.items import transitions

    with store.session() as session:
        return [(t.at, t.from_status.value if t.from_status else "-", t.to_status.value, t.actor)
                for t in transitions(session, item_id)]
