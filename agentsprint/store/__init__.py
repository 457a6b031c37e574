"""Persistence: SQLModel tables, engine and migrations, and the repositories over them.

Only this package opens sessions; callers get domain objects or plain dataclasses back.
Store, StoreError and redact_url are loaded on first use (PEP 562), so that importing a light
submodule such as `agentsprint.store.sqlite_direct` does not import SQLAlchemy (~0.24 s, measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentsprint.store.core import Store, redact_url
    from agentsprint.store.errors import StoreError


def __getattr__(name: str) -> Any:
    if name in ("Store", "redact_url"):
        from agentsprint.store import core

        return getattr(core, name)
    if name == "StoreError":
        from agentsprint.store.errors import StoreError

        return StoreError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Store", "StoreError", "redact_url"]
