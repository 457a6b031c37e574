"""Where items may write: whether two scopes can touch the same file, and groups of items that overlap.

Pure: the runner flags overlaps at run start and merges in precedence order; planning flags them per plan.
"""

from __future__ import annotations

from itertools import combinations

from agentsprint.domain import Item

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
