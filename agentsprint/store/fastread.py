"""Read-only live statuses through the stdlib sqlite3 module.

`agentsprint list` must start in well under 0.25 s; importing sqlmodel alone costs ~0.24 s (measured),
so the list path reads SQLite directly and only falls back to the full store for other databases.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
