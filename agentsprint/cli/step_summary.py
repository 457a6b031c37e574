"""The Markdown a run appends to `$GITHUB_STEP_SUMMARY`: outcome per item, spend, capacity, review queue."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentsprint.cli.ci_report import CiSummary, Outcome

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def append_step_summary(summary: CiSummary) -> Path | None:
    """Append the Markdown summary to the file $GITHUB_STEP_SUMMARY names (nothing when it is unset)."""
    target = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown(summary))
    return path


def markdown(summary: CiSummary) -> str:
    """The whole summary as GitHub-flavoured Markdown."""
    lines = [f"## agentsprint run {summary.run_id}", "", _headline(summary), ""]
    lines += _table(summary.outcomes)
    lines += ["", _spend_line(summary)]
    if summary.capacity is not None:
        lines.append(_capacity_line(summary))
    lines += ["", "### Review queue", ""]
    lines += [f"- **{item_id}** {cell(title)}: `agentsprint review show {item_id}`"
              for item_id, title in summary.review_queue] or ["Nothing awaits review."]
    return "\n".join(lines) + "\n\n"


def _headline(summary: CiSummary) -> str:
    bad = [o for o in summary.outcomes if not o.ok]
    if not summary.outcomes:
        return "Nothing to run."
    if not bad:
        return f"**All {len(summary.outcomes)} item(s) done or awaiting review** in {summary.seconds:.0f} s."
    return (f"**{len(bad)} of {len(summary.outcomes)} item(s) not done** "
            f"({', '.join(f'{o.item_id} {o.status}' for o in bad)}) in {summary.seconds:.0f} s.")


def _table(outcomes: list[Outcome]) -> list[str]:
    from agentsprint.cli.views import count
    from agentsprint.money import usd_text

    rows = ["| item | outcome | tokens spent / budget | USD spent / budget | note |", "|---|---|---|---|---|"]
    for o in outcomes:
        tokens = f"{count(o.spent_tokens)} / {'no cap' if o.budget_tokens is None else count(o.budget_tokens)}"
        usd = f"{usd_text(o.spent_usd)} / {'no cap' if o.budget_usd is None else usd_text(o.budget_usd)}"
        note = o.note if o.ok else o.headline
        rows.append(f"| {o.item_id} {cell(o.title)} | {o.status} | {tokens} | {usd} | {cell(note)} |")
    return rows


def _spend_line(summary: CiSummary) -> str:
    from agentsprint.money import usd_text

    tokens = sum(o.spent_tokens for o in summary.outcomes)
    usd = sum(o.spent_usd for o in summary.outcomes)
    caps = [o.budget_usd for o in summary.outcomes]
    budget = "" if None in caps or not caps else f" of {usd_text(sum(c or 0.0 for c in caps))} budgeted"
    return f"**Spend** (all runs of these items): {tokens:,} tokens, {usd_text(usd)}{budget}."


def _capacity_line(summary: CiSummary) -> str:
    from agentsprint.money import usd_text

    capacity = summary.capacity or {}
    tokens = sum(o.spent_tokens for o in summary.outcomes)
    usd = sum(o.spent_usd for o in summary.outcomes)
    parts = []
    if capacity.get("tokens") is not None:
        parts.append(f"{tokens:,} of {capacity['tokens']:,} tokens")
    if capacity.get("usd") is not None:
        parts.append(f"{usd_text(usd)} of {usd_text(capacity['usd'])}")
    if capacity.get("review_hours") is not None:
        parts.append(f"{capacity['review_hours']:g} review hours")
    return f"**Sprint capacity**: {', '.join(parts) or 'no caps'}."


def cell(text: str) -> str:
    """`text` safe in one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
