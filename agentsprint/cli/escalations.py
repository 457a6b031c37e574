"""`escalations list | show | retry | drop`: items the agents handed to a human, and the dead-letter list."""

from __future__ import annotations

import json
from typing import Any

import typer

from agentsprint.cli.context import console, fail, settings_or_exit

app = typer.Typer(help="Escalated items and the dead-letter list (failed).", invoke_without_command=True)


def _services():  # type: ignore[no-untyped-def]
    from agentsprint.runner.actions import open_services

    return open_services(settings_or_exit())



@app.callback()
def _group(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:  # a bare group prints its help and succeeds
        typer.echo(ctx.get_help())
        raise typer.Exit(0)

@app.command("list")
def list_command(failed: bool = typer.Option(False, "--failed", help="Only the dead-letter list."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Open escalations (or, with --failed, items whose infrastructure kept failing)."""
    from rich.table import Table

    from agentsprint.store.runs import open_escalations

    found = open_escalations(_services().store, failed=True if failed else None)
    rows: list[dict[str, Any]] = [{"id": e.item_id, "escalation": e.id, "reason": e.reason, "detail": e.detail,
                                   "created_at": e.created_at} for e in found]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no open escalations" if not failed else "the dead-letter list is empty")
        return
    table = Table(title="dead-letter list" if failed else "escalations")
    for column in ("item", "reason", "detail"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["reason"], r["detail"][:100])
    console.print(table)


@app.command("show")
def show_command(item_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The escalation package: plan, each round's diff, gate outputs, QA reasons, spend, branch."""
    from agentsprint.runner.actions import ActionError, escalation_detail

    try:
        detail = escalation_detail(_services(), item_id)
    except ActionError as exc:
        fail(str(exc), code=1)
    if as_json:
        typer.echo(json.dumps(detail, indent=2, default=str))
        return
    package = detail["package"]
    console.print(f"[bold]{item_id}[/bold] escalated: {detail['reason']} - {detail['detail']}")
    console.print(f"work preserved on branch {package.get('branch')} at {package.get('head')}")
    for spend in package.get("spend", []):
        console.print(f"  spend {spend['role']} ({spend['model']}): {spend['input_tokens'] + spend['output_tokens']:,} "
                      f"tokens, ${spend['usd']:.4f} in {spend['calls']} calls")
    for rnd in package.get("rounds", []):
        failed = [g["name"] for g in rnd.get("gates", []) if not g.get("passed")]
        console.print(f"  round {rnd.get('round')}: {rnd.get('verdict')}; gates failed: {failed or 'none'}; "
                      f"+{rnd.get('added', 0)} -{rnd.get('removed', 0)}")
        for reason in rnd.get("reasons", []):
            console.print(f"    - {reason[:300]}")


@app.command("retry")
def retry_command(
    item_id: str,
    add_tokens: int = typer.Option(0, "--add-tokens", min=0, help="Raise the item's token budget."),
    add_usd: float = typer.Option(0.0, "--add-usd", min=0, help="Raise the item's USD budget."),
    add_rounds: int = typer.Option(None, "--add-rounds", min=1, help="QA rounds for the next attempt."),
) -> None:
    """Continue from the preserved work with more budget; `agentsprint run` picks it up."""
    from agentsprint.runner.actions import ActionError, retry

    try:
        retry(_services(), item_id, add_tokens, add_usd, add_rounds)
    except ActionError as exc:
        fail(str(exc), code=1)
    console.print(f"{item_id} queued again: `agentsprint run --item {item_id}` continues from its preserved work")


@app.command("drop")
def drop_command(item_id: str) -> None:
    """Give up on the item: `status: dropped` is committed into its file on the base branch."""
    from agentsprint.runner.actions import ActionError, drop

    try:
        drop(_services(), item_id)
    except ActionError as exc:
        fail(str(exc), code=1)
    console.print(f"{item_id} dropped (its file says so, committed on the base branch)")
