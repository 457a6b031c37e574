"""Closing a sprint: what was not finished moves to the next sprint or back to the backlog."""

from __future__ import annotations

from typing import Any

from agentsprint.backlog.sprints import write_sprint
from agentsprint.config import Settings
from agentsprint.domain import Sprint, SprintState, Status
from agentsprint.money import usd_value
from agentsprint.store.done_items import live_statuses, scope_spend

FINISHED = frozenset({Status.DONE, Status.DROPPED})


def unfinished(sprint: Sprint, statuses: dict[str, str]) -> dict[str, str]:
    """{item id: live status} of the sprint's items that are neither done nor dropped."""
    return {i: statuses.get(i, Status.TODO.value) for i in sprint.items if statuses.get(i) not in FINISHED}


def close_sprint(settings: Settings, sprint: Sprint, target: Sprint | None) -> dict[str, Any]:
    """Close `sprint` (keeping only its finished items) after moving the rest into `target`; the summary."""
    statuses = live_statuses(settings.database_url)
    left = unfinished(sprint, statuses)
    if target is not None:
        moved = [i for i in left if i not in target.items]
        write_sprint(settings.backlog_dir, target.model_copy(update={"items": [*target.items, *moved]}))
    finished = [i for i in sprint.items if i not in left]
    write_sprint(settings.backlog_dir, sprint.model_copy(update={"state": SprintState.CLOSED, "items": finished}))
    tokens, usd = scope_spend(settings.database_url).get(f"sprint:{sprint.name}", (0, 0.0))
    done = [i for i in finished if statuses.get(i) == Status.DONE]
    return {"sprint": sprint.name, "items_planned": len(sprint.items), "items_done": len(done),
            "done": done, "unfinished": left, "carried_over_to": target.name if target else None,
            "spent": {"tokens": tokens, "usd": usd_value(usd)},
            "capacity": sprint.capacity.model_dump()}
