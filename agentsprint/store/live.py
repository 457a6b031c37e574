"""Live statuses and item budgets for views: stdlib sqlite3 for SQLite, the full store for other databases."""

from __future__ import annotations

from agentsprint.store.sqlite_direct import ItemBudgets


def live_statuses(url: str) -> dict[str, tuple[str, int]]:
    """{id: (live status, round)} of every item the store knows."""
    from agentsprint.store.sqlite_direct import live_statuses as read_sqlite

    found = read_sqlite(url)
    if found is not None:
        return found
    from agentsprint.store import Store
    from agentsprint.store.runs import all_item_states

    store = Store(url)
    try:
        return {item_id: (state.status.value, state.round) for item_id, state in all_item_states(store).items()}
    finally:
        store.close()


def item_budgets(url: str) -> ItemBudgets:
    """Effective limits, top-ups and spend per item scope."""
    from agentsprint.store.sqlite_direct import item_budgets as read_sqlite

    found = read_sqlite(url)
    if found is not None:
        return found
    from agentsprint.store import Store
    from agentsprint.store.ledger import item_budgets as read_store

    store = Store(url)
    try:
        return read_store(store)
    finally:
        store.close()
