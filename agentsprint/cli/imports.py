"""`import github` and `import csv`: items from an issue tracker's export, each source imported once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentsprint.cli.context import fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.backlog.importing import Drafts
    from agentsprint.config import Settings

app = typer.Typer(help="Create items from an issue tracker's export (re-importing changes nothing).")


@app.command("github")
def github_command(
    file: str = typer.Argument(..., metavar="FILE|-",
                               help="The JSON of `gh issue list --json number,title,body,labels,url,milestone`."),
) -> None:
    """Create an item per GitHub issue: labels map to type and priority ([import]), the URL is its source."""
    from agentsprint.backlog.importing import github_drafts

    settings = settings_or_exit()
    text, name = _read(file)
    labels = settings.import_.labels
    _write(settings, github_drafts(text, name, labels, _defaults(settings), _epics(settings)), name)


@app.command("csv")
def csv_command(
    file: str = typer.Argument(..., metavar="FILE|-",
                               help="CSV with a header row: title, type, priority, value, body, tokens, usd, source."),
) -> None:
    """Create an item per spreadsheet row (row 1 is the header; empty cells take the [import] defaults)."""
    from agentsprint.backlog.importing import csv_drafts

    settings = settings_or_exit()
    text, name = _read(file)
    _write(settings, csv_drafts(text, name, _defaults(settings)), name)


def _read(file: str) -> tuple[str, str]:
    """The export's text and the name errors give it; exit 2 when it cannot be read as UTF-8 text."""
    if file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8-sig"), file
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror or exc}")


def _defaults(settings: Settings) -> dict[str, Any]:
    """What an imported item starts from: the [import] template's fields, then its type and priority."""
    from agentsprint.cli.items import _template

    fields, _ = _template(settings, settings.import_.template)
    return {**fields, "type": settings.import_.type.value, "priority": settings.import_.priority.value}


def _epics(settings: Settings) -> frozenset[str]:
    """Names of the backlog's epics (a milestone of that name becomes the item's epic)."""
    return frozenset(path.stem for path in (settings.backlog_dir / "epics").glob("*.yml"))


def _write(settings: Settings, found: Drafts, name: str) -> None:
    """Create the new drafts' items, say what was created, skipped and refused; exit 1 if any was refused."""
    from agentsprint.backlog.service import create_new_items
    from agentsprint.cli.items import cache_dir
    from agentsprint.cli.views import relative

    created, known = create_new_items(settings.backlog_dir, [(d.data, d.body) for d in found.drafts],
                                      settings.backlog.id_prefix, cache_dir(settings))
    made = iter(created)
    for draft in found.drafts:
        if draft.source in known:
            typer.echo(f"unchanged {draft.where}: already imported as {known[draft.source]}")
        else:
            item, path = next(made)
            typer.echo(f"created {item.id} from {draft.where}: {relative(path, settings.root)}")
    for where, message in found.problems:
        typer.echo(f"{name}: {where}: {message}", err=True)
    typer.echo(f"{len(created)} created, {len(known)} already imported, {len(found.problems)} not imported")
    if found.problems:
        raise typer.Exit(1)
