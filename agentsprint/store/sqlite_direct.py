"""Read-only store queries run directly on a SQLite file with the stdlib sqlite3 module.

`agentsprint list` must start in well under 0.25 s; importing sqlmodel alone costs ~0.24 s (measured),
so the list path reads SQLite directly and only falls back to the full store for other databases.
Each query answers the same question as a store function of the same name (`store.runs.all_item_states`
for `live_statuses`, `store.sprints.sprint_item_ids`, `store.ledger.item_budgets`);
tests/unit/test_sqlite_direct.py checks both give the same answer on the same database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsprint.store.errors import StoreError, check_sqlite_file


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite:/// URL, or None for other databases."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


def live_statuses(url: str) -> dict[str, tuple[str, int]] | None:
    """{item_id: (status, round)} from a SQLite database; {} if it does not exist; None if not SQLite."""
    path = sqlite_path(url)
    if path is None:
        return None
    if not path.is_file():
        return {}
    check_sqlite_file(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT item_id, status, round FROM item_state").fetchall()
    except sqlite3.OperationalError:
        return {}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from None
    finally:
        conn.close()
    return {item_id: (status, rnd) for item_id, status, rnd in rows}


def sprint_item_ids(url: str, name: str) -> list[str] | None:
    """Ids of a sprint's items from a SQLite database; None when there is no such sprint (or no database).

    Only for SQLite URLs (check with sqlite_path first); other databases go through the store.
    """
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    check_sqlite_file(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        if conn.execute("SELECT 1 FROM sprints WHERE name = ?", (name,)).fetchone() is None:
            return None
        rows = conn.execute("SELECT item_id FROM sprint_items WHERE sprint = ? ORDER BY added_at", (name,))
        return [row[0] for row in rows.fetchall()]
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from None
    finally:
        conn.close()


BUDGETS_SQL = ("SELECT scope, limit_tokens, limit_usd, spent_tokens, spent_usd FROM budgets "
               "WHERE scope LIKE 'item:%' OR scope LIKE 'shadow:%'")
ADDED_SQL = "SELECT data_json FROM events WHERE kind = 'budget.added'"


def item_budgets(url: str) -> ItemBudgets | None:
    """Limits, spend and top-ups of every item scope from a SQLite database; None if not SQLite."""
    path = sqlite_path(url)
    if path is None:
        return None
    if not path.is_file():
        return ItemBudgets()
    check_sqlite_file(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return ItemBudgets.from_rows(conn.execute(BUDGETS_SQL).fetchall(), conn.execute(ADDED_SQL).fetchall())
    except sqlite3.OperationalError:
        return ItemBudgets()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from None
    finally:
        conn.close()


@dataclass
class ItemBudgets:
    """Per scope: (limit tokens, limit usd, spent tokens, spent usd) and the summed top-ups (tokens, usd)."""

    rows: dict[str, tuple[int | None, float | None, int, float]] = field(default_factory=dict)
    added: dict[str, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, budget_rows: Iterable[Sequence[Any]], added_rows: Iterable[Sequence[Any]]) -> ItemBudgets:
        found = cls({row[0]: (row[1], row[2], int(row[3] or 0), float(row[4] or 0.0)) for row in budget_rows})
        for (data_json,) in added_rows:
            data = json.loads(data_json)
            tokens, usd = found.added.get(data["scope"], (0, 0.0))
            found.added[data["scope"]] = (tokens + int(data.get("tokens") or 0), usd + float(data.get("usd") or 0))
        return found

    def shadow_spent(self, item_id: str) -> tuple[int, float]:
        """What shadow runs of the item spent (their scopes are `shadow:<run id>:item:<id>`)."""
        spent = [row for scope, row in self.rows.items()
                 if scope.startswith("shadow:") and scope.endswith(f":item:{item_id}")]
        return sum(r[2] for r in spent), round(sum(r[3] for r in spent), 6)
