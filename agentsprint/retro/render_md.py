"""The retro as GitHub-flavoured Markdown (also what a CI run appends to GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from typing import Any

from agentsprint.retro.tables import Table, all_tables


def cell(text: str) -> str:
    """A table cell: pipes escaped, on one line."""
    return " ".join(text.replace("|", "\\|").split())


def table_md(table: Table) -> list[str]:
    """One section: its heading and a pipe table."""
    lines = [f"## {table.title}", "", "| " + " | ".join(cell(h) or " " for h in table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return [*lines, ""]


def render_md(report: dict[str, Any]) -> str:
    """The whole report: title, findings, then every section."""
    lines = [f"# Retro: {report['scope']['title']}", "", f"Generated {report['scope']['generated_at']}.", "",
             "## Findings", ""]
    lines += [f"- {text}" for text in report["findings"]] or ["- nothing to report"]
    lines.append("")
    for table in all_tables(report):
        lines += table_md(table)
    return "\n".join(lines)
