"""`llm test`: check each role's model configuration with one tiny call through the gateway."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from agentsprint.cli.context import console, fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.llm.check import RoleCheck

app = typer.Typer(help="Model configuration: test each role's model, key, price and latency.", no_args_is_help=True)

KNOWN_ROLES = ("supervisor", "coder", "qa", "security")


def _roles(settings: object, role: str | None) -> list[str]:
    configured = list(getattr(settings, "models", {}))
    if role is None:
        return configured
    if role not in configured and role not in KNOWN_ROLES:
        fail(f"unknown role {role!r}: configured roles are {', '.join(configured)}")
    return [role]


@app.command("test")
def test_command(role: str | None = typer.Option(None, "--role", help="Test only this role."),
                 as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """One small call per role: model, latency, tokens and cost, or what is wrong (exit 1 if any fails)."""
    from agentsprint.llm.check import check_role
    from agentsprint.store import Store

    settings = settings_or_exit()
    store = Store("sqlite://")  # a throwaway in-memory ledger: test calls are not project spend
    results = [check_role(settings, name, store) for name in _roles(settings, role)]
    if as_json:
        typer.echo(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        _print(results)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _print(results: list[RoleCheck]) -> None:
    from rich.markup import escape

    for result in results:
        if result.latency_ms is not None:
            cost = "price unknown" if result.usd is None else f"${result.usd:.6f}"
            detail = (f"{result.latency_ms:.0f} ms, {result.input_tokens} in + {result.output_tokens} out tokens, "
                      f"{cost}")
        else:
            detail = "-"
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {result.role:<10} {escape(result.model)}  {detail}", highlight=False)
        if result.diagnosis:
            console.print(f"      {escape(result.diagnosis)}", highlight=False)
