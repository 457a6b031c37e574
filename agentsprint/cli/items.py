"""`init`, `add`, `list`, `show`, `edit`, `validate`: the backlog. Heavy modules load inside commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import typer

from agentsprint.cli.context import console, exit_without_teardown, fail, settings_or_exit
from agentsprint.cli.views import report

if TYPE_CHECKING:
    from agentsprint.backlog import Backlog
    from agentsprint.config import Settings
    from agentsprint.store.sqlite_direct import ItemBudgets

app = typer.Typer(help="The backlog: item files in backlog/.")

ItemTypeName = Literal["bug", "feature", "refactor", "chore", "security", "performance"]
PriorityName = Literal["critical", "high", "medium", "low"]
StatusName = Literal["todo", "planned", "queued", "running", "awaiting_review", "done", "escalated", "failed",
                     "stopped", "dropped"]
QUEUED = ("todo", "planned")
"""What the run board calls `queued` (taken by a run, not started yet): `list --status queued` shows these."""


def cache_dir(settings: Settings) -> Path | None:
    """Where the backlog parse cache lives (only once `init` made the state folder)."""
    return settings.state_dir / "cache" if settings.state_dir.is_dir() else None


def load(settings: Settings) -> Backlog:
    """Every item of the project's backlog folder; BacklogError when there is none."""
    from agentsprint.backlog import BacklogError, load_backlog

    if not settings.backlog_dir.is_dir():
        raise BacklogError(f"no backlog folder at {settings.backlog_dir} (run `agentsprint init`)")
    return load_backlog(settings.backlog_dir, cache_dir(settings))


def records(settings: Settings, backlog: Backlog, live: dict[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """JSON records of every valid item, in id order."""
    from agentsprint.backlog.ids import id_sort_key
    from agentsprint.cli.views import item_record, relative

    folder = relative(settings.backlog_dir, settings.root)
    budgets = item_budgets(settings)
    forecasts = forecast_fields(settings, backlog)
    return [{**item_record(backlog.items[item_id], f"{folder}/{backlog.paths[item_id].name}", live.get(item_id),
                           budgets), **forecasts[item_id]} for item_id in sorted(backlog.items, key=id_sort_key)]


def forecast_fields(settings: Settings, backlog: Backlog) -> dict[str, dict[str, Any]]:
    """Per item: `forecast` (p50/p90 from done items like it, or its budget) and `budget_risks`."""
    from agentsprint.planning.forecast import budget_risks, forecast_all, with_labels
    from agentsprint.store.done_items import done_history

    history = with_labels(done_history(settings.database_url), backlog.items)
    forecasts = forecast_all(backlog.items.values(), history)
    shown: dict[int, dict[str, Any]] = {}  # items sharing a forecast share its JSON
    for forecast in forecasts.values():
        if id(forecast) not in shown:
            shown[id(forecast)] = forecast.to_json()
    return {i: {"forecast": shown[id(f)], "budget_risks": budget_risks(backlog.items[i], f)}
            for i, f in forecasts.items()}


def item_budgets(settings: Settings) -> ItemBudgets:
    """Effective limits, top-ups and spend per item: stdlib sqlite3 for SQLite, the full store otherwise."""
    from agentsprint.store.live import item_budgets as read

    return read(settings.database_url)


def live_statuses(settings: Settings) -> dict[str, tuple[str, int]]:
    """{id: (live status, round)}: stdlib sqlite3 for SQLite, the full store otherwise."""
    from agentsprint.store.live import live_statuses as read

    return read(settings.database_url)


def sprint_ids(settings: Settings, name: str, known: Collection[str] = ()) -> set[str]:
    """Ids of the items of sprint `name` (its file; a sprint only in the database too); exit 2 if none.

    Ids in the file that name no item in `known` are reported on stderr, like broken item files."""
    from agentsprint.backlog.sprints import check_sprint_file, find_sprint, sprint_path
    from agentsprint.store.sqlite_direct import sprint_item_ids, sqlite_path

    sprint = find_sprint(settings.backlog_dir, name)
    if sprint is not None:
        report(check_sprint_file(sprint_path(settings.backlog_dir, name), known)[1])
        return set(sprint.items)
    if sqlite_path(settings.database_url) is not None:
        ids = sprint_item_ids(settings.database_url, name)
    else:
        from agentsprint.store.sprints import sprint_items_at

        ids = sprint_items_at(settings.database_url, name)
    if ids is None:
        fail(f"no sprint named {name!r}")
    return set(ids)


@app.command("init")
def init_command() -> None:
    """Create backlog/, agentsprint.toml and a git-ignored .agentsprint/ (changes nothing twice)."""
    from agentsprint.config import find_root
    from agentsprint.project import NotARepository, current_branch, init_project

    root = find_root()
    try:
        branch = current_branch(root)
    except NotARepository as exc:
        fail(str(exc))
    changes = init_project(root, branch)
    if not changes:
        typer.echo(f"already initialised: nothing changed ({root})")
    for change in changes:
        typer.echo(change)


@app.command("add")
def add_command(
    title: str = typer.Argument(..., metavar="TITLE", help="What the item is about (one line)."),
    type_: ItemTypeName | None = typer.Option(
        None, "--type", metavar="TYPE", help="bug, feature, refactor, chore, security, performance (default feature)."),
    priority: PriorityName | None = typer.Option(
        None, "--priority", metavar="PRIORITY", help="critical, high, medium or low (default medium)."),
    value: int | None = typer.Option(None, "--value", min=0, metavar="N", help="Business value points, for ROI."),
    tokens: int | None = typer.Option(None, "--tokens", min=0, metavar="N", help="Token budget (all roles together)."),
    usd: float | None = typer.Option(None, "--usd", min=0, metavar="USD", help="USD budget."),
    time: str | None = typer.Option(None, "--time", metavar="DURATION", help="Wall-clock budget, e.g. 30m."),
    rounds: int | None = typer.Option(None, "--rounds", min=0, metavar="N", help="QA rejections before escalation."),
    dod: list[str] | None = typer.Option(
        None, "--dod", metavar="ENTRY", help="DoD entry: 'tests: pytest -q', secrets, 'review: human'..."),
    scope: list[str] | None = typer.Option(
        None, "--scope", metavar="GLOB", help="Where the coder may write (repeatable)."),
    depends_on: list[str] | None = typer.Option(
        None, "--depends-on", metavar="ID", help="Item that must be done first (repeatable)."),
    label: list[str] | None = typer.Option(None, "--label", metavar="LABEL", help="A label (repeatable)."),
    epic: str | None = typer.Option(None, "--epic", metavar="NAME", help="Epic name."),
    template: str | None = typer.Option(None, "--template", metavar="NAME", help="bug, feature, refactor or security."),
    body: str | None = typer.Option(None, "--body", metavar="TEXT", help="Markdown body, or - to read it from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the new item as JSON."),
) -> None:
    """Add an item to the backlog (validated first; options override the template's defaults)."""
    from agentsprint.backlog.service import create_item, merge_fields
    from agentsprint.cli.views import item_record, relative

    settings = settings_or_exit()
    defaults, template_body = _template(settings, template)
    explicit = {"title": title, "type": type_, "priority": priority, "value": value, "epic": epic,
                "labels": label, "depends_on": depends_on, "scope": scope, "dod": dod,
                "budget": {"tokens": tokens, "usd": usd, "time": time, "rounds": rounds}}
    text = _body_text(body, template_body)
    item, path = create_item(settings.backlog_dir, merge_fields(defaults, explicit), text,
                             settings.backlog.id_prefix, cache_dir(settings))
    shown = relative(path, settings.root)
    if as_json:
        typer.echo(json.dumps({**item_record(item, shown, None), "body": item.body}, indent=2))
    else:
        typer.echo(f"created {item.id}: {shown}")


def _template(settings: Settings, name: str | None) -> tuple[dict[str, Any], str]:
    """A template's defaults: the project's backlog/templates/ first, then the packaged ones."""
    if name is None:
        return {}, ""
    from agentsprint.backlog.service import load_template, template_path
    from agentsprint.config import templates_dir

    return load_template(template_path([settings.backlog_dir / "templates", templates_dir() / "items"], name))


def _body_text(body: str | None, template_body: str) -> str:
    text = sys.stdin.read() if body == "-" else body
    if text is None:
        return template_body
    return text if not text or text.endswith("\n") else text + "\n"


@app.command("list")
def list_command(
    status: list[str] | None = typer.Option(None, "--status", metavar="STATUS", help="Only this status."),
    type_: list[str] | None = typer.Option(None, "--type", metavar="TYPE", help="Only this type."),
    label: list[str] | None = typer.Option(None, "--label", metavar="LABEL", help="Only with this label."),
    sprint: str | None = typer.Option(None, "--sprint", metavar="NAME", help="Only the items of this sprint."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """List items with their live status; broken files are reported on stderr, the rest still listed."""
    exit_without_teardown()
    from agentsprint.cli.views import print_items

    choices("--status", status, get_args(StatusName))
    if status and "queued" in status:
        status = [*status, *QUEUED]
    choices("--type", type_, get_args(ItemTypeName))
    settings = settings_or_exit()
    backlog = load(settings)
    report(backlog.problems)
    members = sprint_ids(settings, sprint, backlog.items) if sprint else None
    shown = [r for r in records(settings, backlog, live_statuses(settings))
             if (not status or r["status"] in status) and (not type_ or r["type"] in type_)
             and (not label or set(label) & set(r["labels"])) and (members is None or r["id"] in members)]
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
    elif shown:
        print_items(shown, console, sys.stdout.isatty())
        _warn_risks(shown)
    else:
        typer.echo("no items", err=True)


def _warn_risks(shown: list[dict[str, Any]]) -> None:
    """One warning naming the items whose budget is below their forecast's p50."""
    risky = [r["id"] for r in shown if r.get("budget_risks")]
    if risky:
        typer.echo(f"warning: {len(risky)} item(s) have a budget below their forecast p50 (likely to escalate on "
                   f"budget): {', '.join(risky[:20])}{' ...' if len(risky) > 20 else ''}", err=True)


def choices(option: str, given: list[str] | None, allowed: tuple[str, ...]) -> None:
    """A usage error (exit 2) naming the option when a value is not one of `allowed`."""
    wrong = [value for value in given or [] if value not in allowed]
    if wrong:
        raise typer.BadParameter(f"{wrong[0]!r} is not one of {', '.join(allowed)}", param_hint=option)


@app.command("show")
def show_command(
    item_id: str = typer.Argument(..., metavar="ID", help="Item id, e.g. AS-12."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """One item: definition, live status, rounds, spend against its budget, and body."""
    exit_without_teardown()
    from agentsprint.cli.views import item_record, relative, show_lines

    settings = settings_or_exit()
    backlog = load(settings)
    item_id = _known_id(backlog, item_id)
    item = backlog.items.get(item_id)
    if item is None:
        broken = [p for p in backlog.problems if p.path.stem.upper().split("-", 2)[:2] == item_id.split("-")]
        report(broken)
        fail(f"item {item_id} is not valid (see above)" if broken else f"item {item_id} not found")
    live, spent = _state_and_spend(settings, item_id)
    budgets = item_budgets(settings)
    shadow_tokens, shadow_usd = budgets.shadow_spent(item_id)
    record = {**item_record(item, relative(backlog.paths[item_id], settings.root), live, budgets),
              **forecast_fields(settings, backlog)[item_id],
              "spent": spent, "shadow_spent": {"tokens": shadow_tokens, "usd": shadow_usd},
              "body": item.body, "acceptance_criteria": item.acceptance_criteria}
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        typer.echo("\n".join(show_lines(record)))


def _known_id(backlog: Backlog, given: str) -> str:
    """`given` as the backlog spells it: ids are case-insensitive (`as-1` is AS-1)."""
    return next((known for known in backlog.items if known.upper() == given.upper()), given.upper())


def _state_and_spend(settings: Settings, item_id: str) -> tuple[tuple[str, int] | None, dict[str, Any]]:
    """Live (status, round) and spend of one item; nothing is created when there is no database yet."""
    from agentsprint.store.sqlite_direct import sqlite_path

    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        return None, {"tokens": 0, "usd": 0.0}
    from agentsprint.store import Store
    from agentsprint.store.ledger import budgets
    from agentsprint.store.runs import item_state

    store = Store(settings.database_url)
    try:
        state = item_state(store, item_id)
        scope = f"item:{item_id}"
        budget = budgets(store, [scope])[scope]
    finally:
        store.close()
    live = (state.status.value, state.round) if state else None
    from agentsprint.money import usd_value

    return live, {"tokens": budget.spent_tokens, "usd": usd_value(budget.spent_usd)}


@app.command("edit")
def edit_command(item_id: str = typer.Argument(..., metavar="ID", help="Item id, e.g. AS-12.")) -> None:
    """Edit an item in $EDITOR; the file is replaced only if the result is valid."""
    from agentsprint.backlog.files import existing_path
    from agentsprint.cli.editing import edit_item

    settings = settings_or_exit()
    backlog = load(settings)
    path = backlog.paths.get(item_id) or existing_path(settings.backlog_dir, item_id)
    if path is None:
        fail(f"no item {item_id} in {settings.backlog_dir}")
    raise typer.Exit(edit_item(path, backlog))


@app.command("validate")
def validate_command() -> None:
    """Check every item file and the links between them; exit 1 when anything is wrong."""
    exit_without_teardown()
    from agentsprint.backlog.epics import epic_problems
    from agentsprint.backlog.sprints import sprint_problems

    settings = settings_or_exit()
    backlog = load(settings)
    problems = [*backlog.problems, *sprint_problems(settings.backlog_dir, backlog.items),
                *epic_problems(settings.backlog_dir)]
    report(problems, err=False)
    if problems:
        files = len({problem.path for problem in problems})
        typer.echo(f"{len(problems)} problem(s) in {files} file(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(backlog.items)} item(s), no problems")
