"""`clean [--dry-run]`: remove the worktrees and branches of done and dropped items."""

from __future__ import annotations

import typer

from agentsprint.cli.context import settings_or_exit

app = typer.Typer(help="Tidy up what finished items left behind.")


@app.command("clean")
def clean_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
) -> None:
    """Remove worktrees and branches of done and dropped items; escalated, waiting and uncommitted work stays."""
    from agentsprint.gitrepo import WorkspaceError
    from agentsprint.money import plural
    from agentsprint.runner.cleanup import plan_and_clean

    try:
        found = plan_and_clean(settings_or_exit(), dry_run)
    except WorkspaceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    verb = "would remove" if dry_run else "removed"
    for item_id, what in found.removed.items():
        typer.echo(f"{verb} {item_id}: {what}")
    for item_id, why in found.kept.items():
        typer.echo(f"kept {item_id}: {why}")
    typer.echo(f"{verb} the work of {plural(len(found.removed), 'item')}, kept {len(found.kept)}"
               if found.removed or found.kept else "nothing to clean")
