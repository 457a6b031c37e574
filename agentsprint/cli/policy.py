"""`policy show | check`: the effective policy, and which rule allows or refuses a command or a path."""

from __future__ import annotations

import json

import typer

from agentsprint.cli.context import fail, settings_or_exit

app = typer.Typer(help="The policy the coder works under, and why it allows or refuses something.",
                  invoke_without_command=True)


@app.callback()
def _group(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@app.command("show")
def show_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """The effective policy: allowed commands, protected paths, sandbox, file size cap, approvers."""
    from agentsprint.audit.explain import effective_policy

    shown = effective_policy(settings_or_exit())
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        typer.echo(f"{key:<17} {', '.join(map(str, value)) or '(none)' if isinstance(value, list) else value}")


def _item(settings, item_id: str):  # type: ignore[no-untyped-def]
    from agentsprint.backlog import load_backlog

    found = load_backlog(settings.backlog_dir).items.get(item_id.upper())
    if found is None:
        fail(f"{item_id}: no such item in {settings.backlog_dir}")
    return found


@app.command("check")
def check_command(
    command: str = typer.Option(None, "--command", metavar="C", help="A command the coder would run."),
    path: str = typer.Option(None, "--path", metavar="P", help="A path (relative to the repository) it would write."),
    item_id: str = typer.Option(None, "--item", metavar="ID", help="Also check the path against this item's scope."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Would the coder be allowed this command and this path, and which rule decides: exit 0 yes, 1 no."""
    from agentsprint.audit import explain

    if command is None and path is None:
        fail("give --command, --path or both")
    settings = settings_or_exit()
    item = _item(settings, item_id) if item_id else None
    rulings = explain.check_command(settings, command) if command is not None else []
    rulings += explain.check_path(settings, path, item) if path is not None else []
    if as_json:
        typer.echo(json.dumps(explain.as_json(rulings), indent=2))
    for r in [] if as_json else rulings:
        typer.echo(f"{'allowed' if r.allowed else 'REFUSED':<8} {r.subject:<8} {r.rule}: {r.detail}")
    raise typer.Exit(0 if all(r.allowed for r in rulings) else 1)
