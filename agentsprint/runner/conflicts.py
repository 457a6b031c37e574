"""Items that touch the same code: overlap warnings, merge order by precedence, rebase or escalate."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from agentsprint import dod
from agentsprint.backlog.scopes import GLOB_CHARS, overlap_groups, overlapping_pairs, scopes_overlap, static_prefix
from agentsprint.domain import Item, ItemType, Status
from agentsprint.policy import precedence_key

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.workspace import Workspace

__all__ = ["GLOB_CHARS", "merge_blockers", "merge_lock", "overlap_groups", "overlapping_pairs", "regate",
           "scopes_overlap", "static_prefix"]

@contextmanager
def merge_lock(state_dir: Path) -> Iterator[None]:
    """One merge at a time across threads and processes of this repository."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "merge.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_blockers(item: Item, others: dict[str, tuple[Item, Status]], precedence: Sequence[ItemType]) -> list[str]:
    """Active items that must merge first: higher precedence and an overlapping scope."""
    mine = precedence_key(item, precedence)
    return sorted(
        other.id for other, status in others.values()
        if other.id != item.id and status in (Status.PLANNED, Status.RUNNING)
        and precedence_key(other, precedence) < mine and scopes_overlap(item.scope, other.scope)
    )


def regate(item: Item, ws: Workspace, settings: Settings) -> list[dod.GateResult]:
    """Run the item's deterministic gates again on its (rebased) worktree."""
    try:
        return dod.run_item_gates(item, ws, ws.changed_files(item.id), ws.diff(item.id), settings)
    finally:
        ws.drop_gate_checkout(item.id)
