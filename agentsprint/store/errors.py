"""The store's error, and the check that a SQLite file is a database before anything opens it.

Standard library only: `agentsprint list` reads SQLite through it without importing SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be opened or migrated; the message names the file or URL."""


def check_sqlite_file(path: Path) -> None:
    """StoreError unless `path` is missing, empty, or starts with SQLite's header.

    Checked before SQLite opens the file: SQLite would set up its journal beside a file it cannot
    read (a garbage `agentsprint.db`, a URL pointing at `/etc/passwd`) before noticing.
    """
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
