"""`review list | show | approve | reject`: the human gate."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import typer

from agentsprint.cli.context import console, fail, settings_or_exit
from agentsprint.cli.deciding import AS_HELP, claimed_name

if TYPE_CHECKING:
    from agentsprint.runner.settle import Project

app = typer.Typer(help="The review inbox: approve (merge) or reject (new round) agents' work.",
                  invoke_without_command=True)


def _services() -> Project:
    from agentsprint.runner.actions import open_project
    from agentsprint.store import StoreError

    try:
        return open_project(settings_or_exit())
    except StoreError as exc:
        fail(str(exc))


def _age(since: float) -> str:
    minutes = max(0, int((time.time() - since) / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"



@app.callback()
def _group(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:  # a bare group prints its help and succeeds
        typer.echo(ctx.get_help())
        raise typer.Exit(0)

@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Items awaiting a human decision, oldest first."""
    from rich.table import Table

    from agentsprint.runner.actions import review_inbox

    entries = review_inbox(_services())
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        console.print("review inbox is empty")
        return
    table = Table(title="review inbox")
    for column in ("item", "waiting", "round", "files", "changed lines"):
        table.add_column(column)
    for e in entries:
        table.add_row(e["id"] + (" (shadow)" if e["shadow"] else ""), _age(e["since"]), str(e["round"]),
                      str(e["files"]), str(e["changed_lines"]))
    console.print(table)


@app.command("show")
def show_command(item_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The diff with stats, the gates' results and QA's reasons (the plain diff when not on a terminal)."""
    from agentsprint.money import plural
    from agentsprint.runner.actions import ActionError, review_detail

    try:
        detail = review_detail(_services(), item_id)
    except ActionError as exc:
        fail(str(exc), code=1)
    if as_json:
        typer.echo(json.dumps(detail, indent=2))
        return
    lines = [f"{item_id} round {detail['round']} on {detail['branch']}: "
             f"{plural(detail['files'], 'file')}, +{detail['added']} -{detail['removed']}"]
    lines += [f"  gate {gate['name']}: {'passed' if gate['passed'] else 'FAILED'}" for gate in detail["gates"]]
    lines += [f"  QA: {reason}" for reason in detail["qa_reasons"]]
    if not console.is_terminal:  # a file or a pipe gets the diff byte for byte: `git apply` takes it
        typer.echo("\n".join(lines))
        typer.echo(detail["diff"] or "(empty diff)", nl=not (detail["diff"] or "").endswith("\n"))
        return
    from rich.syntax import Syntax
    from rich.text import Text

    for line in lines:
        console.print(Text(line))
    console.print(Syntax(detail["diff"] or "(empty diff)", "diff", word_wrap=True))


@app.command("approve")
def approve_command(item_id: str, as_name: str = typer.Option(None, "--as", metavar="NAME", help=AS_HELP)) -> None:
    """Approve and merge into the base branch (the item file is marked done in the same merge)."""
    from agentsprint.gitrepo import WorkspaceError
    from agentsprint.runner.actions import ActionError, approve

    services = _services()
    try:
        status = approve(services, item_id, reviewer=claimed_name(services.settings, as_name, guarded=True))
    except (ActionError, WorkspaceError) as exc:
        fail(str(exc), code=1)
    if status.value == "done":
        console.print(f"{item_id} approved and merged")
    else:
        console.print(f"{item_id} approved but the merge conflicted: escalated "
                      f"(agentsprint escalations show {item_id})")
        raise typer.Exit(1)


@app.command("reject")
def reject_command(item_id: str, message: str = typer.Option(..., "-m", "--message", help="What must change."),
                   as_name: str = typer.Option(None, "--as", metavar="NAME", help=AS_HELP)) -> None:
    """Reject; the next `agentsprint run` starts a new round with this comment as the finding."""
    from agentsprint.runner.actions import ActionError, reject

    try:
        reject(_services(), item_id, message, reviewer=as_name)
    except ActionError as exc:
        fail(str(exc), code=1)
    console.print(f"{item_id} rejected: `agentsprint run --item {item_id}` starts its next round with your comment")
