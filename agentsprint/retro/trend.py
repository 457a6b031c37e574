"""`retro --trend`: the headline figures of every sprint side by side, so a lead sees whether things improve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentsprint.retro.metrics import SCHEMA_VERSION
from agentsprint.retro.report import build
from agentsprint.retro.scope import Scope, load_sprint

if TYPE_CHECKING:
    from agentsprint.config import Settings

HEADLINES = ("cost_per_done_item_usd", "first_pass_rate", "handoff_validity", "review_wait_p90", "wasted_usd")
"""The trend's columns (besides the sprint's name), as its JSON keys."""


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The few figures that say whether a sprint went better than the last."""
    return {"cost_per_done_item_usd": report["cost_per_done_item"]["usd"], "first_pass_rate": report["first_pass_rate"],
            "handoff_validity": report["handoff_validity"], "review_wait_p90": report["review_wait"]["p90"],
            "wasted_usd": report["wasted_spend"]["usd"]}


def sprint_names(settings: Settings) -> list[str]:
    """The database's sprints, oldest first, then sprint files the database does not know."""
    from agentsprint.store.history import sprint_names as recorded

    names = recorded(settings.database_url)
    folder = settings.backlog_dir / "sprints"
    files = sorted(p.stem for p in folder.glob("*.yml")) if folder.is_dir() else []
    return names + [n for n in files if n not in names]


def make_trend(settings: Settings) -> dict[str, Any]:
    """Headline figures per sprint, oldest first."""
    from agentsprint.store.history import load_history, load_sprint_record

    history = load_history(settings.database_url)
    rows = []
    for name in sprint_names(settings):
        info = load_sprint(settings.backlog_dir, name, load_sprint_record(settings.database_url, name))
        report = build(history, Scope("sprint", frozenset(info.items), sprint=info), settings.review.lines_per_hour)
        rows.append({"sprint": name, **headline(report)})
    return {"schema_version": SCHEMA_VERSION, "trend": rows}
