"""What planning reads: the history of done items, live statuses, other sprints, epics and their spend.

The only module of `planning/` that does I/O; forecast.py and planner.py stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentsprint.backlog.epics import list_epics
from agentsprint.backlog.sprints import list_sprints
from agentsprint.config import Settings
from agentsprint.domain import Item, Sprint, SprintState, Status
from agentsprint.planning.forecast import Forecast, forecast_all, usd_p50s, with_labels
from agentsprint.planning.planner import PlanInput
from agentsprint.store.done_items import done_history, live_statuses, scope_spend

NOT_PLANNABLE = {Status.RUNNING: "running", Status.AWAITING_REVIEW: "awaiting review",
                 Status.ESCALATED: "escalated (retry or drop it first)",
                 Status.FAILED: "failed (retry or drop it first)",
                 Status.DROPPED: "dropped"}


def item_forecasts(settings: Settings, items: Mapping[str, Item]) -> dict[str, Forecast]:
    """Every item's forecast from the project's history of done items."""
    return forecast_all(items.values(), with_labels(done_history(settings.database_url), items))


def usd_forecasts(settings: Settings, items: Mapping[str, Item]) -> dict[str, float]:
    """The p50 USD of every item whose forecast comes from done items (the retro's forecast_error)."""
    return usd_p50s(item_forecasts(settings, items))


def plan_input(settings: Settings, items: Mapping[str, Item], sprint: Sprint) -> PlanInput:
    """Everything `plan_sprint` needs for `sprint`, read from the backlog folder and the database."""
    statuses = live_statuses(settings.database_url)
    spend = scope_spend(settings.database_url)
    return PlanInput(
        sprint, items, item_forecasts(settings, items),
        done=frozenset(i for i, status in statuses.items() if status == Status.DONE),
        unavailable={**_live_reasons(statuses), **_other_sprints(settings, sprint.name)},
        lines_per_hour=settings.review.lines_per_hour,
        epics={epic.name: epic.budget for epic in list_epics(settings.backlog_dir)},
        epic_spent={scope.removeprefix("epic:"): spent for scope, spent in spend.items() if scope.startswith("epic:")},
    )


def _live_reasons(statuses: Mapping[str, str]) -> dict[str, str]:
    return {i: NOT_PLANNABLE[Status(s)] for i, s in statuses.items() if s in NOT_PLANNABLE}


def _other_sprints(settings: Settings, name: str) -> dict[str, str]:
    """Items already in another sprint that is not closed."""
    return {item_id: f"planned in sprint {other.name}" for other in list_sprints(settings.backlog_dir)
            if other.name != name and other.state is not SprintState.CLOSED for item_id in other.items}
