"""`forecast`: p50/p90 of what done items cost, per type, and a suggested budget a lead can adopt."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, get_args

import typer

from agentsprint.cli.context import fail, settings_or_exit
from agentsprint.cli.items import ItemTypeName, choices

if TYPE_CHECKING:
    from agentsprint.config import Settings

app = typer.Typer()

COLUMNS = (("tokens", "tokens"), ("usd", "USD"), ("rounds", "rounds"), ("changed_lines", "lines"),
           ("wall_seconds", "wall s"))


@app.command("forecast")
def forecast_command(
    type_: list[str] | None = typer.Option(None, "--type", metavar="TYPE", help="Only this type (repeatable)."),
    apply: str | None = typer.Option(None, "--apply", metavar="ID",
                                     help="Set the item's budget to the suggested one (p90 x 1.2)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per item type: p50 and p90 of tokens, USD, rounds, changed lines and wall time of done items."""
    from agentsprint.domain import ItemType
    from agentsprint.planning.forecast import type_table
    from agentsprint.store.done_items import done_history

    choices("--type", type_, get_args(ItemTypeName))
    settings = settings_or_exit()
    if apply:
        _apply(settings, apply.upper(), as_json)
        return
    rows = type_table(done_history(settings.database_url), type_ or [t.value for t in ItemType])
    typer.echo(json.dumps(rows, indent=2) if as_json else "\n".join(table_lines(rows)))


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per type: sample size, p50/p90 of each figure, the suggested budget."""
    from agentsprint.cli.planview import amount

    lines = [f"{'TYPE':<12} {'N':>3}  " + "  ".join(f"{label + ' p50/p90':>20}" for _, label in COLUMNS)
             + "  SUGGESTED (p90 x 1.2)"]
    for row in rows:
        cells = [f"{_pair(row[key], key):>20}" for key, _ in COLUMNS]
        suggested = row["suggested_budget"]
        tip = (f"{amount('tokens', suggested['tokens'])} tok, {amount('usd', suggested['usd'])}"
               if suggested else "no done items yet")
        lines.append(f"{row['type']:<12} {row['sample']:>3}  " + "  ".join(cells) + f"  {tip}")
    return lines


def _pair(figure: dict[str, float] | None, key: str) -> str:
    from agentsprint.cli.planview import amount

    if figure is None:
        return "-"
    kind = "usd" if key == "usd" else "tokens"
    return f"{amount(kind, figure['p50'])} / {amount(kind, figure['p90'])}"


def _apply(settings: Settings, item_id: str, as_json: bool) -> None:
    """Rewrite the item's budget (tokens, USD, time) with the suggested one; its file is replaced atomically."""
    from agentsprint.backlog.files import write_item
    from agentsprint.cli.items import load
    from agentsprint.cli.views import relative
    from agentsprint.planning.forecast import suggested_budget
    from agentsprint.planning.inputs import item_forecasts

    backlog = load(settings)
    item = backlog.items.get(item_id)
    if item is None:
        fail(f"item {item_id} not found (or not valid: see `agentsprint validate`)")
    forecast = item_forecasts(settings, backlog.items)[item_id]
    if not forecast.from_history:
        fail(f"{item_id}: no done {item.type.value} items yet, so no forecast to take a budget from", code=1)
    suggested = {k: v for k, v in suggested_budget(forecast).items() if v is not None}
    budget = item.budget.model_copy(update=suggested)
    path = write_item(settings.backlog_dir, item.model_copy(update={"budget": budget}))
    if as_json:
        typer.echo(json.dumps({"id": item_id, "budget": budget.model_dump(), "forecast": forecast.to_json()}, indent=2))
    else:
        typer.echo(f"{item_id}: budget set to {suggested} from {forecast.sample} done {item.type.value} item(s) "
                   f"({relative(path, settings.root)})")
