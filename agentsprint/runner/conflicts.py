"""Items that touch the same code: overlap warnings, merge order by precedence, rebase or escalate."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

from agentsprint import dod
from agentsprint.domain import Item, Status
from agentsprint.policy import precedence_key

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.workspace import Workspace

GLOB_CHARS = "*?["


def static_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard ("src/api/**" -> "src/api/")."""
    cut = min((pattern.find(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    return head if cut == len(pattern) else head[: head.rfind("/") + 1]


def scopes_overlap(a: list[str], b: list[str]) -> bool:
    """Whether two scopes may touch the same file; an empty scope is the whole repository."""
    if not a or not b:
        return True
    return any(pa.startswith(pb) or pb.startswith(pa) for pa in map(static_prefix, a) for pb in map(static_prefix, b))


def overlapping_pairs(items: list[Item]) -> list[tuple[str, str]]:
    """Pairs of items whose scopes overlap (flagged at run start: they may conflict when merged)."""
    return [(x.id, y.id) for x, y in combinations(items, 2) if scopes_overlap(x.scope, y.scope)]


def overlap_groups(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """The connected groups of overlapping items, each in the order its items were first named."""
    group_of: dict[str, list[str]] = {}
    for a, b in pairs:
        first, second = group_of.setdefault(a, [a]), group_of.setdefault(b, [b])
        if first is not second:
            first.extend(second)
            for member in second:
                group_of[member] = first
    unique = {id(group): group for group in group_of.values()}
    return [sorted(group, key=list(group_of).index) for group in unique.values()]


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


def merge_blockers(item: Item, others: dict[str, tuple[Item, Status]], precedence: list) -> list[str]:
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
