"""What the sprint board and the retro screen show and do: the planning, runner and retro services, as plain values.

No widget and no database session here, and no sprint logic of its own: `sprint plan --auto | --add`,
`sprint start`, `run --sprint` and `retro --sprint` call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsprint.config import Settings

if TYPE_CHECKING:
    from agentsprint.backlog import Backlog
    from agentsprint.domain import Sprint
    from agentsprint.planning.planner import Plan

COLUMNS = ("todo", "running", "QA", "awaiting review", "done", "escalated")
COLUMN_OF = {"todo": "todo", "planned": "todo", "stopped": "todo", "running": "running",
             "awaiting_review": "awaiting review", "done": "done", "dropped": "done", "escalated": "escalated",
             "failed": "escalated"}
REVIEWERS = frozenset({"qa", "security"})
EXPORTS = ("md", "html")


class NoSprint(Exception):
    """The project has no sprint that is active or planned."""


@dataclass(frozen=True)
class Card:
    """One item on the board."""

    id: str
    title: str
    status: str


@dataclass(frozen=True)
class Board:
    """The current sprint: its items by column and its forecast load against each capacity."""

    name: str
    state: str
    goal: str
    columns: dict[str, list[Card]] = field(default_factory=dict)
    gauges: dict[str, dict[str, float | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def current_sprint(settings: Settings, known: Any = None) -> Sprint:
    """The active sprint, else the newest planned one (latest start, then name); NoSprint when neither."""
    from agentsprint.backlog.sprints import list_sprints, load_sprint

    sprints = list_sprints(settings.backlog_dir)
    for state in ("active", "planned"):
        found = [s for s in sprints if s.state.value == state]
        if found:
            newest = max(found, key=lambda s: (s.start or date.min, s.name))
            return load_sprint(settings.backlog_dir, newest.name, known)
    _broken_files(settings, known)
    raise NoSprint("no active or planned sprint (create one with: agentsprint sprint new NAME --tokens N --usd X)")


def _broken_files(settings: Settings, known: Any) -> None:
    """BacklogError naming file:line when a sprint file is invalid (it may be the sprint meant to be current)."""
    from agentsprint.backlog.errors import BacklogError
    from agentsprint.backlog.sprints import sprint_problems

    problems = sprint_problems(settings.backlog_dir, _backlog(settings).items if known is None else known)
    if problems:
        raise BacklogError("; ".join(p.shown_from(settings.root) for p in problems[:3]))


def _backlog(settings: Settings) -> Backlog:
    from agentsprint.backlog import load_backlog

    cache = settings.state_dir / "cache" if settings.state_dir.is_dir() else None
    return load_backlog(settings.backlog_dir, cache)


def _plan(settings: Settings, backlog: Backlog, sprint: Sprint, **change: Any) -> Plan:
    """The planner on the sprint, as `sprint plan` runs it (auto, add, remove)."""
    from agentsprint.planning.inputs import plan_input
    from agentsprint.planning.planner import plan_sprint

    return plan_sprint(plan_input(settings, backlog.items, sprint), auto=change.get("auto", False),
                       add=change.get("add", ()))


def board(settings: Settings) -> Board:
    """The current sprint's board: cards by live status (running split by the role of its last call)."""
    backlog = _backlog(settings)
    sprint = current_sprint(settings, backlog.items)
    statuses, roles = _live(settings, sprint.items)
    columns: dict[str, list[Card]] = {name: [] for name in COLUMNS}
    for item_id in sprint.items:
        status = statuses.get(item_id, "todo")
        item = backlog.items.get(item_id)
        title = item.title if item else "(no valid item file)"
        columns[column_of(status, roles.get(item_id, ""))].append(Card(item_id, title, status))
    plan = _plan(settings, backlog, sprint)
    return Board(sprint.name, sprint.state.value, sprint.goal, columns, plan.gauges(), plan.warnings)


def column_of(status: str, role: str) -> str:
    """The board column of a live status; a running item whose last tool call was a reviewer's is in QA."""
    return "QA" if status == "running" and role in REVIEWERS else COLUMN_OF.get(status, "todo")


def _live(settings: Settings, ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Live status of every item the store knows, and the role of the last tool call of each running one of `ids`."""
    from agentsprint.store.done_items import live_statuses

    statuses = live_statuses(settings.database_url)
    running = [i for i in ids if statuses.get(i) == "running"]
    if not running:
        return statuses, {}
    from agentsprint.store.monitor import last_roles
    from agentsprint.tui.data import services

    with services(settings) as svc:
        return statuses, last_roles(svc.store, running)


def replan(settings: Settings, **change: Any) -> str:
    """`sprint plan NAME --auto` or `--add ID` on the current sprint, written to its file; what changed."""
    from agentsprint.backlog.sprints import write_sprint

    backlog = _backlog(settings)
    sprint = current_sprint(settings, backlog.items)
    plan = _plan(settings, backlog, sprint, **change)
    added = [i for i in plan.items if i not in sprint.items]
    if added:
        write_sprint(settings.backlog_dir, sprint.model_copy(update={"items": plan.items}))
    said = f"sprint {sprint.name}: " + (f"added {', '.join(added)}" if added else "nothing added")
    return "; ".join([said, *plan.warnings])


def start_sprint(settings: Settings) -> str:
    """`sprint start` on the current sprint (when planned), then `agentsprint run --sprint` detached."""
    from agentsprint.backlog.sprints import write_sprint
    from agentsprint.domain import SprintState
    from agentsprint.runner.launch import launch_run

    sprint = current_sprint(settings)
    if sprint.state is SprintState.PLANNED:
        write_sprint(settings.backlog_dir, sprint.model_copy(update={"state": SprintState.ACTIVE}))
    pid, log = launch_run(settings, sprint=sprint.name)
    return f"sprint {sprint.name} is active; run started (pid {pid}); log: {log.relative_to(settings.root)}"


def retro(settings: Settings) -> dict[str, Any]:
    """The retro of the current sprint, as `agentsprint retro --sprint NAME` makes it."""
    from agentsprint.planning.inputs import usd_forecasts
    from agentsprint.retro.service import make_report

    backlog = _backlog(settings)
    sprint = current_sprint(settings, backlog.items)
    return make_report(settings, usd_forecasts(settings, backlog.items), sprint=sprint.name)


def export_retro(settings: Settings, report: dict[str, Any], fmt: str) -> Path:
    """Write the retro as `retro --sprint NAME -o FILE` would (md or html) under .agentsprint/retro/; the path."""
    from agentsprint.backlog.files import atomic_write
    from agentsprint.retro.service import render

    name = (report["scope"].get("sprint") or {}).get("name", "all")
    path = settings.state_dir / "retro" / f"{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, render(report, fmt), durable=False)
    return path
