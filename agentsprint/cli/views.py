"""How items are shown: JSON records, the list table and the `show` page.

The list table is drawn by rich on a terminal for up to RICH_ROWS rows; larger lists and pipes get
plain aligned columns, because rich needs ~0.3 s for 1,000 rows (measured) and `list` has 0.25 s.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agentsprint.backlog import Problem
    from agentsprint.domain import Budget, Item
    from agentsprint.store.sqlite_direct import ItemBudgets

RICH_ROWS = 200
HEADERS = ("ID", "TITLE", "TYPE", "PRIORITY", "VALUE", "STATUS", "BUDGET")
FORECAST = "FORECAST p50"
"""Shown once any item has a forecast from done items like it."""
STATUS_STYLES = {"done": "green", "running": "cyan", "awaiting_review": "yellow", "escalated": "red",
                 "failed": "red", "stopped": "magenta", "dropped": "dim", "planned": "blue"}


def report(problems: list[Problem], err: bool = True) -> None:
    """Each problem as `path:line: message`, paths relative to the current folder."""
    here = Path.cwd()
    for problem in problems:
        typer.echo(problem.shown_from(here), err=err)


def relative(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies below it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def budget_record(budget: Budget) -> dict[str, Any]:
    return {"tokens": budget.tokens, "usd": budget.usd, "time": budget.time, "rounds": budget.rounds}


def budget_fields(item: Item, budgets: ItemBudgets | None) -> dict[str, Any]:
    """`budget` (the effective limits), `budget_original` (the item file's) and `budget_added` (top-ups)."""
    original = budget_record(item.budget)
    scope = f"item:{item.id}"
    row = budgets.rows.get(scope) if budgets else None
    tokens, usd = budgets.added.get(scope, (0, 0.0)) if budgets else (0, 0.0)
    effective = original if row is None else {**original, "tokens": row[0], "usd": row[1]}
    return {"budget": effective, "budget_original": original,
            "budget_added": {"tokens": tokens, "usd": round(usd, 6)}}


def item_record(item: Item, path: str, live: tuple[str, int] | None,
                budgets: ItemBudgets | None = None) -> dict[str, Any]:
    """The JSON object of an item: its definition plus the live status, rounds so far and effective budget."""
    return {
        "id": item.id, "title": item.title, "type": item.type.value, "priority": item.priority.value,
        "value": item.value, "status": live[0] if live else item.status.value,
        "file_status": item.status.value,
        "rounds": live[1] if live else 0, "epic": item.epic, "source": item.source,
        "labels": item.labels,
        "depends_on": item.depends_on, "scope": item.scope, **budget_fields(item, budgets),
        "dod": [gate.to_entry() for gate in item.dod], "path": path,
    }


def count(tokens: int) -> str:
    """500000 -> 500k, 1500000 -> 1.5M."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if tokens >= size:
            return f"{tokens / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(tokens)


def budget_text(budget: dict[str, Any]) -> str:
    """A one-line budget such as `500k tok, $2.50, 30m, 3 rounds` ('-' when uncapped)."""
    from agentsprint.money import plural, usd_text

    parts = []
    if budget["tokens"] is not None:
        parts.append(f"{count(budget['tokens'])} tok")
    if budget["usd"] is not None:
        parts.append(usd_text(budget["usd"]))
    if budget["time"] is not None:
        parts.append(str(budget["time"]))
    if budget["rounds"] is not None:
        parts.append(plural(budget["rounds"], "round"))
    return ", ".join(parts) or "-"


def added_text(added: dict[str, Any]) -> str:
    """Top-ups such as `+30k tok, +$1.00` ('' when none)."""
    parts = [f"+{count(added['tokens'])} tok"] if added.get("tokens") else []
    parts += [f"+${added['usd']:.2f}"] if added.get("usd") else []
    return ", ".join(parts)


def effective_budget_text(record: dict[str, Any]) -> str:
    """The effective budget, with the top-ups it includes: `36k tok, $0.50 (incl. +30k tok)`."""
    added = added_text(record.get("budget_added") or {})
    return budget_text(record["budget"]) + (f" (incl. {added})" if added else "")


def with_history(records: list[dict[str, Any]]) -> bool:
    """Whether any record's forecast comes from history (else the FORECAST column would repeat BUDGET)."""
    return any((r.get("forecast") or {}).get("basis", "budget") != "budget" for r in records)


def headers(forecast: bool) -> tuple[str, ...]:
    return (*HEADERS, FORECAST) if forecast else HEADERS


def forecast_text(record: dict[str, Any]) -> str:
    """`45k tok, $0.12 (n=3)` from the p50s; `!` when the budget is below them; `-` without history."""
    from agentsprint.money import usd_text

    forecast = record.get("forecast") or {}
    if forecast.get("basis", "budget") == "budget":
        return "-"
    parts = [f"{count(forecast['tokens']['p50'])} tok"] if forecast.get("tokens") else []
    parts += [usd_text(forecast["usd"]["p50"])] if forecast.get("usd") else []
    risk = " !" if record.get("budget_risks") else ""
    return ", ".join(parts) + f" (n={forecast['sample']}){risk}"


def table_rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    forecast = with_history(records)
    return [(r["id"], r["title"], r["type"], r["priority"], str(r["value"]), r["status"],
             effective_budget_text(r), *([forecast_text(r)] if forecast else [])) for r in records]


def plain_table(rows: list[tuple[str, ...]], width: int | None = None) -> str:
    """Aligned columns; with a `width`, titles are cut so each line fits."""
    head = headers(bool(rows) and len(rows[0]) > len(HEADERS))
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    if width is not None:
        others = sum(widths) - widths[1] + 2 * (len(head) - 1)
        widths[1] = max(len(head[1]), min(widths[1], width - others))
    lines = []
    for row in [head, *rows]:
        cells = [cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "~"
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip())
    return "\n".join(lines)


def rich_table(rows: list[tuple[str, ...]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for header in headers(bool(rows) and len(rows[0]) > len(HEADERS)):
        table.add_column(header, overflow="ellipsis", no_wrap=header != "TITLE",
                         justify="right" if header == "VALUE" else "left")
    for row in rows:
        cells = [Text(cell) for cell in row]  # Text, not str: a title like "[x]" is not markup
        cells[5].stylize(STATUS_STYLES.get(row[5], ""))
        table.add_row(*cells)
    return table


def print_items(records: list[dict[str, Any]], out: Console, is_terminal: bool) -> None:
    """The list table: rich on a terminal for short lists, plain columns otherwise."""
    rows = table_rows(records)
    if is_terminal and len(rows) <= RICH_ROWS:
        out.print(rich_table(rows))
        return
    width = shutil.get_terminal_size().columns if is_terminal else None
    print(plain_table(rows, width), flush=True)


def forecast_lines(record: dict[str, Any]) -> list[str]:
    """`forecast  p50 45k tok, $0.12; p90 ... (3 done bug items)` and a warning when the budget is below p50."""
    from agentsprint.money import usd_text

    forecast = record.get("forecast")
    if not forecast:
        return []
    if forecast["basis"] == "budget":
        return ["  forecast  none yet (no done items of this type): the budget stands in"]
    figures = [(q, forecast["tokens"], forecast["usd"]) for q in ("p50", "p90")]
    text = "; ".join(f"{q} {count(t[q]) if t else '-'} tok, {usd_text(u[q]) if u else '-'}" for q, t, u in figures)
    basis = "type and labels" if forecast["basis"] == "type+labels" else "type"
    lines = [f"  forecast  {text} ({forecast['sample']} done items of this {basis}"
             f"{', few' if forecast['thin'] else ''})"]
    if record.get("budget_risks"):
        lines.append(f"  warning   budget below the forecast p50 ({', '.join(record['budget_risks'])}): "
                     "likely to escalate on budget")
    return lines


def show_lines(record: dict[str, Any]) -> list[str]:
    """The `show` page of an item record (with spent and body)."""
    from agentsprint.money import usd_text

    status = record["status"]
    if status != record["file_status"]:
        status += f" (file: {record['file_status']})"
    dod = ", ".join(e if isinstance(e, str) else ", ".join(f"{k}: {v}" for k, v in e.items())
                    for e in record["dod"])
    lines = [
        f"{record['id']}  {record['title']}",
        f"  status    {status}, round {record['rounds']}",
        f"  type      {record['type']}, priority {record['priority']}, value {record['value']}",
        f"  budget    {effective_budget_text(record)}",
    ]
    if record.get("budget_added", {}).get("tokens") or record.get("budget_added", {}).get("usd"):
        lines.append(f"  original  {budget_text(record['budget_original'])} (item file), "
                     f"added {added_text(record['budget_added'])} (escalations retry)")
    lines += forecast_lines(record)
    lines.append(f"  spent     {record['spent']['tokens']:,} tok, {usd_text(record['spent']['usd'])}")
    shadow = record.get("shadow_spent") or {}
    if shadow.get("tokens"):
        lines.append(f"  shadow    {shadow['tokens']:,} tok, {usd_text(shadow['usd'])} (shadow runs; not charged)")
    for label, key in (("epic", "epic"), ("labels", "labels"), ("depends", "depends_on"), ("scope", "scope")):
        value = record[key]
        if value:
            lines.append(f"  {label:<9} {', '.join(value) if isinstance(value, list) else value}")
    lines += [f"  dod       {dod or '-'}", f"  file      {record['path']}", ""]
    body: str = record["body"]
    return lines + body.rstrip("\n").splitlines()
