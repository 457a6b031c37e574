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


def sprint_items_at(url: str, name: str) -> list[str] | None:
    """`sprint_item_ids` on the database at `url`, opened and closed for this one question."""
    store = Store(url)
    try:
        return sprint_item_ids(store, name)
    finally:
        store.close()


def sprint_budget(store: Store, name: str) -> tuple[int | None, float | None]:
    """(tokens, usd) limits of a sprint; (None, None) when it has none or does not exist."""
    with store.session() as session:
        row = session.get(SprintRow, name)
        return (row.tokens, row.usd) if row else (None, None)


def sprints_of(store: Store, item_id: str) -> list[str]:
    """Names of the sprints an item belongs to."""
    with store.session() as session:
        return sorted(set(session.exec(select(SprintItemRow.sprint).where(SprintItemRow.item_id == item_id)).all()))
