"""The retro as CSV: one row per item, for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = ["id", "type", "status", "rounds", "tokens_supervisor", "tokens_coder", "tokens_qa", "tokens", "usd",
           "budget_tokens", "budget_usd", "utilization", "value", "review_wait", "escalation_reason"]
"""The CSV header (stable: spreadsheets refer to these names)."""


def render_csv(report: dict[str, Any]) -> str:
    """Header and one row per item; empty cells where a figure is null."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["items"]:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return out.getvalue()
