"""The trend (headline figures per sprint) as a table: Markdown, CSV, HTML and the terminal share it."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

from agentsprint.money import usd_text
from agentsprint.retro.tables import NONE, Table, duration, pct
from agentsprint.retro.trend import HEADLINES

HEADER = ["sprint", "cost per done item", "first-pass rate", "handoff validity", "review wait p90", "waste"]


def trend_table(trend: dict[str, Any]) -> Table:
    """One row per sprint, oldest first."""
    def money(value: float | None) -> str:
        """Money, or n/a."""
        return NONE if value is None else usd_text(value)

    rows = [[r["sprint"], money(r["cost_per_done_item_usd"]), pct(r["first_pass_rate"]), pct(r["handoff_validity"]),
             duration(r["review_wait_p90"]), money(r["wasted_usd"])] for r in trend["trend"]]
    return Table("Trend", HEADER, rows)


def trend_md(trend: dict[str, Any]) -> str:
    """The trend as Markdown."""
    from agentsprint.retro.render_md import table_md

    return "# Retro trend\n\n" + "\n".join(table_md(trend_table(trend)))


def trend_csv(trend: dict[str, Any]) -> str:
    """The trend as CSV with its JSON keys as the header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["sprint", *HEADLINES], lineterminator="\n")
    writer.writeheader()
    for row in trend["trend"]:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def trend_html(trend: dict[str, Any]) -> str:
    """The trend as a small self-contained HTML page."""
    table = trend_table(trend)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Retro trend</title>"
            "<style>:root{color-scheme:light dark}body{font-family:system-ui,sans-serif}"
            "td,th{border:1px solid #8888;padding:3px 8px}table{border-collapse:collapse}</style></head>"
            f"<body><h1>Retro trend</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "</body></html>\n")
