"""The Store: one database, opened and migrated on construction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlmodel import Session

from agentsprint.store.engine import StoreError, make_engine, migrate


def _reason(exc: Exception) -> str:
    """The driver's own message, on one line (SQLAlchemy appends the statement and a help link)."""
    cause = getattr(exc, "orig", None) or exc
    return " ".join(str(cause).split()) or type(cause).__name__


class Store:
    """One database: opened and migrated on construction."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = make_engine(url)
            migrate(self.engine)
        except StoreError:
            raise
        except Exception as exc:  # translate driver errors into one of ours
            raise StoreError(f"cannot open database {redact_url(url)}: {_reason(exc)}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def redact_url(url: str) -> str:
    """The URL with any password replaced."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
