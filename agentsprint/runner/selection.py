"""Which items a run takes: the ones named, a sprint's, or every item whose live status can run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from agentsprint import backlog
from agentsprint.config import Settings
from agentsprint.domain import Item, Status
from agentsprint.runner.settle import MERGE_BLOCKED
from agentsprint.store import runs

RUNNABLE = {Status.TODO, Status.PLANNED, Status.RUNNING, Status.STOPPED}  # RUNNING: interrupted, resumed


class RunError(Exception):
    """The run cannot start (unknown item, invalid backlog entry); a usage error."""


@dataclass
class Selection:
    """The items a run executes, every valid item, and those it left out with why."""

    items: list[Item]
    all_items: dict[str, Item]
    skipped: dict[str, str] = field(default_factory=dict)


def select_items(settings: Settings, ids: list[str] | None, sprint: str | None) -> tuple[list[Item], dict[str, Item]]:
    """The items to run, in backlog order; raises RunError naming what is wrong."""
    chosen = selection(settings, ids, sprint)
    return chosen.items, chosen.all_items


def selection(settings: Settings, ids: list[str] | None, sprint: str | None) -> Selection:
    """Named items as given; otherwise (a sprint's, or every item) only those whose LIVE status can run."""
    loaded = backlog.load_backlog(settings.backlog_dir)
    wanted = list(ids or [])
    if sprint and not wanted:
        wanted = _sprint_items(settings, sprint, loaded.items)
    if not ids and not sprint:
        wanted = list(loaded.items)
    missing = [i for i in wanted if i not in loaded.items]
    if missing:
        problems = [str(p) for p in loaded.problems if any(m in str(p) for m in missing)]
        raise RunError(f"unknown or invalid item(s): {', '.join(missing)}" + "".join(f"\n  {p}" for p in problems))
    items = [loaded.items[i] for i in dict.fromkeys(wanted)]
    if ids:
        return Selection(items, loaded.items)
    why = _not_runnable(settings, items)
    return Selection([i for i in items if i.id not in why], loaded.items, why)


def _not_runnable(settings: Settings, items: list[Item]) -> dict[str, str]:
    """{item id: its live status} of the items a run cannot take (done, dropped, escalated, in review...)."""
    from agentsprint.store import Store

    store = Store(settings.database_url)
    try:
        states = runs.all_item_states(store)
    finally:
        store.close()
    why = {}
    for item in items:
        state = states.get(item.id)
        status = state.status if state else item.status
        waiting_merge = status is Status.AWAITING_REVIEW and state is not None and state.reason == MERGE_BLOCKED
        if status not in RUNNABLE and not waiting_merge:
            why[item.id] = status.value
    return why


def skipped_line(skipped: dict[str, str]) -> str:
    """`skipped 3 items: 2 escalated, 1 dropped` (most common reason first)."""
    counts = Counter(skipped.values()).most_common()
    noun = "item" if len(skipped) == 1 else "items"
    return f"skipped {len(skipped)} {noun}: " + ", ".join(f"{n} {why}" for why, n in counts)


def _sprint_items(settings: Settings, sprint: str, known_ids: Collection[str]) -> list[str]:
    """The items of the sprint's file (unknown ids are errors at their line); else of its database row."""
    from agentsprint.backlog.sprints import find_sprint
    from agentsprint.store.sprints import sprint_items_at

    try:
        defined = find_sprint(settings.backlog_dir, sprint, known_ids)
    except backlog.BacklogError as exc:
        raise RunError(f"sprint {sprint!r} is not valid:\n{exc}") from None
    if defined is not None:
        return defined.items
    ids = sprint_items_at(settings.database_url, sprint)
    if ids is None:
        raise RunError(f"no sprint named {sprint!r} (create it with: agentsprint sprint new {sprint} ...)")
    return ids
