"""Sprints and their items."""

from __future__ import annotations

from sqlmodel import col, select

from agentsprint.store import Store
from agentsprint.store.tables import SprintItemRow, SprintRow


def sprint_item_ids(store: Store, name: str) -> list[str] | None:
    """Ids of a sprint's items in the order they were added; None when there is no such sprint."""
    with store.session() as session:
        if session.get(SprintRow, name) is None:
            return None
        rows = session.exec(select(SprintItemRow).where(SprintItemRow.sprint == name)
                            .order_by(col(SprintItemRow.added_at))).all()
        return [r.item_id for r in rows]
