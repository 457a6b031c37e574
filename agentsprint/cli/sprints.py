"""`sprint new | plan | list | show | start | close`: sprints are files in backlog/sprints/, history is in the DB."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date
from typing import TYPE_CHECKING, Any

import typer

from agentsprint.cli.context import fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.backlog import Backlog
    from agentsprint.config import Settings
    from agentsprint.domain import Sprint

app = typer.Typer(help="Sprints: backlog/sprints/NAME.yml (capacity in tokens, USD and review hours).")


def _backlog(settings: Settings) -> Backlog:
    from agentsprint.cli.items import load

    return load(settings)


def _sprint(settings: Settings, name: str, known: Collection[str] | None = None) -> Sprint:
    from agentsprint.backlog.sprints import load_sprint

    return load_sprint(settings.backlog_dir, name, known)


def _date(text: str | None, option: str) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-12-01", param_hint=option) from None


@app.command("new")
def new_command(
    name: str = typer.Argument(..., metavar="NAME", help="Sprint name (letters, digits, _ . -)."),
    tokens: int = typer.Option(..., "--tokens", min=0, metavar="N", help="Token capacity."),
    usd: float = typer.Option(..., "--usd", min=0, metavar="USD", help="USD capacity."),
    review_hours: float | None = typer.Option(None, "--review-hours", min=0, metavar="H",
                                              help="Human review hours available."),
    goal: str = typer.Option("", "--goal", metavar="TEXT", help="What the sprint is for."),
    start: str | None = typer.Option(None, "--start", metavar="DATE", help="First day, e.g. 2026-12-01."),
    end: str | None = typer.Option(None, "--end", metavar="DATE", help="Last day."),
) -> None:
    """Write backlog/sprints/NAME.yml (state planned, no items yet)."""
    from pydantic import ValidationError

    from agentsprint.backlog.sprints import sprint_path, write_sprint
    from agentsprint.cli.views import relative
    from agentsprint.domain import Capacity, Sprint

    settings = settings_or_exit()
    path = sprint_path(settings.backlog_dir, name)
    if path.exists():
        fail(f"sprint {name} already exists: {relative(path, settings.root)}")
    try:
        sprint = Sprint(name=name, goal=goal, start=_date(start, "--start"), end=_date(end, "--end"),
                        capacity=Capacity(tokens=tokens, usd=usd, review_hours=review_hours))
    except ValidationError as exc:
        fail(f"sprint {name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")
    typer.echo(f"created sprint {name}: {relative(write_sprint(settings.backlog_dir, sprint), settings.root)}")


@app.command("plan")
def plan_command(
    name: str = typer.Argument(..., metavar="NAME", help="Sprint name."),
    auto: bool = typer.Option(False, "--auto", help="Fill the capacity by priority, then value per forecast USD."),
    add: list[str] | None = typer.Option(None, "--add", metavar="ID", help="Add an item by hand (repeatable)."),
    remove: list[str] | None = typer.Option(None, "--remove", metavar="ID", help="Take an item out (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Plan the sprint against its capacity; the sprint file is rewritten with the planned items."""
    from agentsprint.backlog.sprints import write_sprint
    from agentsprint.cli.planview import plan_lines, plan_record
    from agentsprint.planning.inputs import plan_input
    from agentsprint.planning.planner import PlanError, plan_sprint

    settings = settings_or_exit()
    backlog = _backlog(settings)
    sprint = _sprint(settings, name, backlog.items)
    if sprint.state.value == "closed":
        fail(f"sprint {name} is closed: plan another one")
    try:
        plan = plan_sprint(plan_input(settings, backlog.items, sprint), auto=auto,
                           add=[i.upper() for i in add or []], remove=[i.upper() for i in remove or []])
    except PlanError as exc:
        fail(str(exc))
    if plan.items != sprint.items:
        write_sprint(settings.backlog_dir, sprint.model_copy(update={"items": plan.items}))
    record = plan_record(sprint, plan, backlog.items)
    typer.echo(json.dumps(record, indent=2) if as_json else "\n".join(plan_lines(record)))


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Every sprint: state, dates, items, spend against capacity."""
    from agentsprint.backlog.sprints import list_sprints, sprint_problems
    from agentsprint.cli.planview import sprint_summary, summary_line
    from agentsprint.cli.views import report
    from agentsprint.store.done_items import live_statuses, scope_spend

    settings = settings_or_exit()
    report(sprint_problems(settings.backlog_dir, _backlog(settings).items))
    statuses, spend = live_statuses(settings.database_url), scope_spend(settings.database_url)
    records = [sprint_summary(s, statuses, spend) for s in list_sprints(settings.backlog_dir)]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        typer.echo("\n".join(map(summary_line, records)) if records else "no sprints")


@app.command("show")
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="Sprint name."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """The plan, the live status of each item, spend against capacity and the review queue."""
    from agentsprint.cli.planview import show_lines, sprint_detail

    settings = settings_or_exit()
    backlog = _backlog(settings)
    record = sprint_detail(settings, _sprint(settings, name), backlog.items)
    typer.echo(json.dumps(record, indent=2) if as_json else "\n".join(show_lines(record)))


@app.command("start")
def start_command(name: str = typer.Argument(..., metavar="NAME", help="Sprint name.")) -> None:
    """Mark the sprint active (its file's state)."""
    from agentsprint.backlog.sprints import write_sprint
    from agentsprint.domain import SprintState

    settings = settings_or_exit()
    sprint = _sprint(settings, name)
    if sprint.state is not SprintState.PLANNED:
        fail(f"sprint {name} is {sprint.state.value}, not planned")
    write_sprint(settings.backlog_dir, sprint.model_copy(update={"state": SprintState.ACTIVE}))
    typer.echo(f"sprint {name} is active ({len(sprint.items)} items)")


@app.command("close")
def close_command(
    name: str = typer.Argument(..., metavar="NAME", help="Sprint name."),
    carry_over: str | None = typer.Option(None, "--carry-over", metavar="NEXT",
                                          help="Move the unfinished items to this sprint (else back to the backlog)."),
    as_json: bool = typer.Option(False, "--json", help="Print the closing summary as JSON."),
) -> None:
    """Close the sprint: report what was not finished and move it to NEXT or back to the backlog."""
    from agentsprint.cli.planview import close_lines
    from agentsprint.planning.lifecycle import close_sprint

    settings = settings_or_exit()
    sprint = _sprint(settings, name)
    if sprint.state.value == "closed":
        fail(f"sprint {name} is already closed")
    target = _sprint(settings, carry_over) if carry_over else None
    if target is not None and (target.state.value == "closed" or target.name == name):
        fail(f"cannot carry over into sprint {carry_over}: it is {'this sprint' if target.name == name else 'closed'}")
    record = close_sprint(settings, sprint, target)
    record["retro"] = _retro_headline(settings, name)
    lines = close_lines(record) + _headline_lines(name, record["retro"])
    typer.echo(json.dumps(record, indent=2) if as_json else "\n".join(lines))


def _retro_headline(settings: Settings, name: str) -> dict[str, Any] | None:
    """The retro's headline figures of the sprint (those `retro --trend` compares); None if it has none."""
    from agentsprint.retro.errors import RetroError
    from agentsprint.retro.service import make_report
    from agentsprint.retro.trend import headline

    try:
        return headline(make_report(settings, sprint=name))
    except RetroError:
        return None


def _headline_lines(name: str, figures: dict[str, Any] | None) -> list[str]:
    """`retro: cost per done item $0.42, first-pass rate 50%, ...` and where the whole retro is."""
    from agentsprint.retro.trend_render import trend_table

    if figures is None:
        return []
    table = trend_table({"trend": [{"sprint": name, **figures}]})
    shown = ", ".join(f"{label} {value}" for label, value in zip(table.header[1:], table.rows[0][1:], strict=True))
    return [f"retro: {shown} (the whole retro: agentsprint retro --sprint {name})"]
