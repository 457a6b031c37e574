"""The store's error, and the check that a SQLite file is a database before anything opens it.

Standard library only: `agentsprint list` reads SQLite through it without importing SQLAlchemy.
"""

from __future__ import annotations

import os
from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be opened or migrated; the message names the file or URL."""


_CHECKED: set[str] = set()


def check_sqlite_file(path: Path) -> None:
    """StoreError unless `path` is missing, empty, or starts with SQLite's header.

    Checked before SQLite opens the file: SQLite would set up its journal beside a file it cannot
    read (a garbage `agentsprint.db`, a URL pointing at `/etc/passwd`) before noticing. Once per
    process and file: closing any descriptor of a database file drops every POSIX lock this process
    holds on it, those of its open SQLite connections included, and another process closing its last
    connection then deletes the WAL from under them ("disk I/O error").
    """
    key = os.path.abspath(path)
    if key in _CHECKED:
        return
    _read_header(path)
    _CHECKED.add(key)


def _read_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there yet: opening it creates a new database (or fails, saying why)
    except IsADirectoryError:
        raise StoreError(f"{path}: is a folder, not a SQLite database") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror}") from None
    if head and head != SQLITE_HEADER:
        raise StoreError(f"{path}: not a SQLite database (it lacks SQLite's header); "
                         "move it away, or set [database] url to another file")
