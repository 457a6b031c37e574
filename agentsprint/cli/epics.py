"""`epic new | list | show`: epics are files in backlog/epics/, a budget over the items that name them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from agentsprint.cli.context import fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.config import Settings
    from agentsprint.domain import Epic

app = typer.Typer(help="Epics: backlog/epics/NAME.yml, a token and USD budget over their items.")


@app.command("new")
def new_command(
    name: str = typer.Argument(..., metavar="NAME", help="Epic name (letters, digits, _ . -)."),
    tokens: int = typer.Option(..., "--tokens", min=0, metavar="N", help="Token budget of all its items together."),
    usd: float = typer.Option(..., "--usd", min=0, metavar="USD", help="USD budget of all its items together."),
    title: str = typer.Option("", "--title", metavar="TEXT", help="What the epic is."),
) -> None:
    """Write backlog/epics/NAME.yml; items join it with `epic: NAME`."""
    from agentsprint.backlog.epics import epic_path, write_epic
    from agentsprint.cli.views import relative
    from agentsprint.domain import Budget, Epic

    settings = settings_or_exit()
    path = epic_path(settings.backlog_dir, name)
    if path.exists():
        fail(f"epic {name} already exists: {relative(path, settings.root)}")
    epic = Epic(name=name, title=title, budget=Budget(tokens=tokens, usd=usd))
    typer.echo(f"created epic {name}: {relative(write_epic(settings.backlog_dir, epic), settings.root)}")


def epic_record(settings: Settings, epic: Epic, statuses: dict[str, str], items: list[dict[str, Any]],
                spend: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """An epic with its budget, its spend and its items (id, title, live status)."""
    from agentsprint.money import usd_value

    tokens, usd = spend.get(f"epic:{epic.name}", (0, 0.0))
    members = [{"id": i["id"], "title": i["title"], "status": statuses.get(i["id"], i["status"])}
               for i in items if i["epic"] == epic.name]
    return {"name": epic.name, "title": epic.title, "budget": {"tokens": epic.budget.tokens, "usd": epic.budget.usd},
            "spent": {"tokens": tokens, "usd": usd_value(usd)}, "items": members}


def _records(settings: Settings, epics: list[Epic]) -> list[dict[str, Any]]:
    from agentsprint.cli.items import load
    from agentsprint.store.done_items import live_statuses, scope_spend

    backlog = load(settings)
    items = [{"id": i.id, "title": i.title, "status": i.status.value, "epic": i.epic} for i in backlog.items.values()]
    statuses, spend = live_statuses(settings.database_url), scope_spend(settings.database_url)
    return [epic_record(settings, epic, statuses, items, spend) for epic in epics]


def _line(record: dict[str, Any]) -> str:
    from agentsprint.cli.planview import amount

    budget, spent = record["budget"], record["spent"]
    done = sum(1 for i in record["items"] if i["status"] == "done")
    return (f"{record['name']:<14} {len(record['items'])} items ({done} done)  "
            f"{amount('usd', spent['usd'])} / {amount('usd', budget['usd'])}  "
            f"{amount('tokens', spent['tokens'])} / {amount('tokens', budget['tokens'])} tok  {record['title']}")


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Every epic: spend against budget and how many of its items are done."""
    from agentsprint.backlog.epics import epic_problems, list_epics
    from agentsprint.cli.views import report

    settings = settings_or_exit()
    report(epic_problems(settings.backlog_dir))
    records = _records(settings, list_epics(settings.backlog_dir))
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        typer.echo("\n".join(map(_line, records)) if records else "no epics")


@app.command("show")
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="Epic name."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """One epic: budget, spend, and each of its items with its live status."""
    from agentsprint.backlog.epics import find_epic

    settings = settings_or_exit()
    epic = find_epic(settings.backlog_dir, name)
    if epic is None:
        fail(f"no epic named {name!r} (create it with: agentsprint epic new {name} --tokens N --usd X)")
    (record,) = _records(settings, [epic])
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    members = [f"  {i['id']:<10} {i['status']:<16} {i['title']}" for i in record["items"]]
    typer.echo("\n".join([_line(record), *members]))
