"""`llm test`: check each role's model configuration with one tiny call through the gateway."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from agentsprint.cli.context import console, fail, settings_or_exit

if TYPE_CHECKING:
    from agentsprint.agents.backend_check import BackendCheck
    from agentsprint.config import Settings
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
    roles = _roles(settings, role)
    results = [check_role(settings, name, store) for name in roles]
    agents = {name: _check_agent(settings, name) for name in roles if settings.model_for(name).backend != "builtin"}
    if as_json:
        typer.echo(json.dumps([{**result.to_dict(), **({"agent": agents[result.role].to_dict()}
                                                       if result.role in agents else {})}
                               for result in results], indent=2))
    else:
        _print(results, agents)
    if not all(result.ok for result in results) or not all(check.ok for check in agents.values()):
        raise typer.Exit(1)


def _check_agent(settings: Settings, role: str) -> BackendCheck:
    """The role's external agent: executable, version, one call in its protocol through the proxy."""
    import tempfile

    from agentsprint.agents.backend_check import check_backend
    from agentsprint.store import Store

    # A throwaway ledger in a file: the proxy serves from its own threads (an in-memory SQLite
    # database is one per connection).
    with tempfile.TemporaryDirectory(prefix="agentsprint-llm-test-") as folder:
        return check_backend(settings, role, Store(f"sqlite:///{folder}/ledger.db"))


def _print(results: list[RoleCheck], agents: dict[str, BackendCheck]) -> None:
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
        if result.role in agents:
            _print_agent(agents[result.role])


def _print_agent(check: BackendCheck) -> None:
    from rich.markup import escape

    mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
    where = check.found or check.executable
    detail = f"{check.version or 'version unknown'}; proxy call: " + (
        f"ok, {check.proxy_tokens} tokens" if check.proxy_ok else "not made")
    console.print(f"{mark}   agent {escape(check.backend)} at {escape(where)}: {escape(detail)}", highlight=False)
    if check.diagnosis:
        console.print(f"      {escape(check.diagnosis)}", highlight=False)
