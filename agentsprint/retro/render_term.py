"""The retro in the terminal: findings first, then rich tables, bars for the splits and a review-queue sparkline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentsprint.retro.tables import Table, all_tables

if TYPE_CHECKING:
    from rich.console import RenderableType

SPARKS = "▁▂▃▄▅▆▇█"
TERMINAL_ITEM_COLUMNS = ("item", "status", "rounds", "tokens", "USD", "utilization", "escalation")
"""The items table's columns that fit 80 columns (the exports have them all)."""
BAR_WIDTH = 20


def sparkline(values: list[float], width: int = 60) -> str:
    """Values as a line of block characters (the last `width` of them)."""
    shown = values[-width:]
    top = max(shown, default=0)
    if not top:
        return SPARKS[0] * len(shown)
    return "".join(SPARKS[min(int(v / top * (len(SPARKS) - 1)), len(SPARKS) - 1)] for v in shown)


def bar(value: float, top: float) -> str:
    """A horizontal bar of `value` against `top`."""
    return "█" * round(BAR_WIDTH * value / top) if top else ""


def narrowed(table: Table, columns: tuple[str, ...]) -> Table:
    """`table` with only `columns`, in their order."""
    keep = [table.header.index(name) for name in columns]
    return Table(table.title, list(columns), [[row[i] for i in keep] for row in table.rows])


def rich_table(table: Table, bars: dict[str, float] | None = None) -> RenderableType:
    """A Table as a rich table, with a bar column when `bars` gives a value per row."""
    from rich.table import Table as RichTable

    shown = RichTable(title=table.title, title_justify="left", title_style="bold")
    for name in table.header:
        shown.add_column(name)
    if bars is not None:
        shown.add_column("")
    top = max(bars.values(), default=0.0) if bars else 0.0
    for row in table.rows:
        shown.add_row(*row, *([bar(bars.get(row[0], 0.0), top)] if bars is not None else []))
    return shown


def renderables(report: dict[str, Any]) -> list[RenderableType]:
    """What `agentsprint retro` prints, top to bottom."""
    shown: list[RenderableType] = [f"[bold]Retro: {report['scope']['title']}[/bold]", "[bold]Findings[/bold]"]
    shown += [f"  • {text}" for text in report["findings"]] or ["  • nothing to report"]
    splits = {"Spend by role": {k: v["usd"] for k, v in report["by_role"].items()},
              "Spend by model": {k: v["usd"] for k, v in report["by_model"].items()}}
    for table in all_tables(report):
        table = narrowed(table, TERMINAL_ITEM_COLUMNS) if table.title == "Items" else table
        shown.append(rich_table(table, splits.get(table.title)))
        if table.title == "Review bottleneck" and report["review_queue"]:
            shown.append("  review queue " + sparkline([p["count"] for p in report["review_queue"]]))
    return shown


def trend_table(trend: dict[str, Any]) -> list[RenderableType]:
    """`retro --trend` in the terminal: one table of sprints."""
    from agentsprint.retro.trend_render import trend_table as table

    if not trend["trend"]:
        return ["no sprints yet: the trend compares sprints (backlog/sprints/*.yml or `agentsprint sprint new`)"]
    return [rich_table(table(trend))]
