"""`escalations list | show | retry | drop`: items the agents handed to a human, and the dead-letter list."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from agentsprint.cli.context import console, fail, settings_or_exit
from agentsprint.cli.deciding import AS_HELP, claimed_name

if TYPE_CHECKING:
    from agentsprint.runner.settle import Project
    from agentsprint.store.records import RoundRecord
    from agentsprint.store.runs import Escalation

app = typer.Typer(help="Escalated items and the dead-letter list (failed).", invoke_without_command=True)


def _services() -> Project:
    from agentsprint.runner.actions import open_project

    return open_project(settings_or_exit())



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
        found = escalation_detail(_services(), item_id)
    except ActionError as exc:
        fail(str(exc), code=1)
    if as_json:
        typer.echo(json.dumps(_rounded(found.to_json()), indent=2, default=str))
        return
    from agentsprint.money import plural, usd_text

    _print_head(item_id, found)
    package = found.package
    if package is None:
        return
    console.print(f"work preserved on branch {package.branch} at {package.head}", highlight=False)
    for spend in package.spend:
        console.print(f"  spend {spend.role} ({spend.model}): {spend.tokens:,} tokens, {usd_text(spend.usd)} "
                      f"in {plural(spend.calls, 'call')}", highlight=False, markup=False)
    for rnd in package.rounds:
        _print_round(rnd)


GATE_TAIL_LINES = 15
"""Lines of a failed gate's output `escalations show` prints: the end, where the error is."""


def _print_head(item_id: str, found: Escalation) -> None:
    from rich.markup import escape

    state = "escalated"
    if found.resolved_at:
        state = f"escalation resolved ({found.resolution or 'resolved'}); was escalated"
    console.print(f"[bold]{escape(item_id)}[/bold] {state}: {escape(found.reason)} - "
                  f"{escape(found.detail)}", highlight=False)


def _print_round(rnd: RoundRecord) -> None:
    failed = [g for g in rnd.gates if not g.get("passed")]
    names = ", ".join(g["name"] for g in failed) or "none"
    console.print(f"  round {rnd.round}: {rnd.verdict}; gates failed: {names}; "
                  f"+{rnd.added} -{rnd.removed}", highlight=False, markup=False)
    for gate in failed:
        console.print(f"    gate {gate['name']} output (last {GATE_TAIL_LINES} lines):", highlight=False, markup=False)
        for line in tail_lines(str(gate.get("output", "")), GATE_TAIL_LINES):
            console.print(f"      {line}", highlight=False, markup=False)
    for reason in rnd.reasons:
        console.print(f"    - {reason if len(reason) <= 300 else '...' + reason[-300:]}", highlight=False,
                      markup=False)


def tail_lines(text: str, count: int) -> list[str]:
    """The last `count` lines of `text`, after a line saying how many were left out."""
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= count:
        return lines
    return [f"[... {len(lines) - count} earlier lines ...]", *lines[-count:]]


def _rounded(detail: dict[str, Any]) -> dict[str, Any]:
    """`detail` with the package's USD amounts rounded for JSON."""
    from agentsprint.money import usd_value

    if not detail["package"]:
        return detail
    package = dict(detail["package"])
    package["spend"] = [{**spend, "usd": usd_value(spend["usd"])} for spend in package.get("spend", [])]
    return {**detail, "package": package}


@app.command("retry")
def retry_command(
    item_id: str,
    add_tokens: int = typer.Option(0, "--add-tokens", min=0, help="Raise the item's token budget."),
    add_usd: float = typer.Option(0.0, "--add-usd", min=0, help="Raise the item's USD budget."),
    add_rounds: int = typer.Option(None, "--add-rounds", min=1, help="QA rounds for the next attempt."),
    as_name: str = typer.Option(None, "--as", metavar="NAME", help=AS_HELP),
) -> None:
    """Continue from the preserved work with more budget; `agentsprint run` picks it up."""
    from agentsprint.runner.actions import ActionError, retry

    services = _services()
    who = claimed_name(services.settings, as_name, guarded=bool(add_tokens or add_usd or add_rounds))
    try:
        retry(services, item_id, add_tokens, add_usd, add_rounds, who=who)
    except ActionError as exc:
        fail(str(exc), code=1)
    console.print(f"{item_id} queued again: `agentsprint run --item {item_id}` continues from its preserved work")


@app.command("drop")
def drop_command(item_id: str, as_name: str = typer.Option(None, "--as", metavar="NAME", help=AS_HELP)) -> None:
    """Give up on the item: `status: dropped` is committed into its file on the base branch."""
    from agentsprint.runner.actions import ActionError, drop

    try:
        drop(_services(), item_id, who=as_name)
    except ActionError as exc:
        fail(str(exc), code=1)
    console.print(f"{item_id} dropped (its file says so, committed on the base branch)")
