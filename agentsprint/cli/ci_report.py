"""What a scripted run leaves for CI: plain output, the JSON summary, JUnit XML and a GitHub step summary."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from agentsprint.config import Settings
    from agentsprint.runner.service import RunReport
    from agentsprint.store.records import EscalationPackage, RoundRecord

DONE_LIKE = ("done", "awaiting_review")
GATE_TAIL_LINES = 15
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def ci_requested(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """`--ci`, or CI=true in the environment (GitHub Actions, GitLab CI and most others set it)."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return flag or value.strip().lower() in ("true", "1", "yes")


def plain_console(stderr: bool = False) -> Console:
    """A rich Console that writes plain text: no colours, no styles, no highlighting, whatever the terminal."""
    from rich.console import Console

    return Console(stderr=stderr, no_color=True, color_system=None, highlight=False, emoji=False,
                   force_terminal=False, force_interactive=False)


@dataclass(frozen=True)
class Outcome:
    """One item of a run as CI reports it: status, note, spend (all its runs) against its budget."""

    item_id: str
    title: str
    status: str
    note: str
    spent_tokens: int
    spent_usd: float
    budget_tokens: int | None
    budget_usd: float | None
    escalation: str = ""
    """The escalation summary (reason, spend, the failed gates and QA reasons of the last round)."""

    @property
    def ok(self) -> bool:
        return self.status in DONE_LIKE

    @property
    def headline(self) -> str:
        """One line: the escalation's reason and detail, else the status and note."""
        if self.escalation:
            return self.escalation.splitlines()[0]
        return f"{self.status}: {self.note}" if self.note else self.status

    def record(self) -> dict[str, Any]:
        """The JSON form of this outcome."""
        from agentsprint.money import usd_value

        return {"id": self.item_id, "title": self.title, "status": self.status, "ok": self.ok, "note": self.note,
                "spent": {"tokens": self.spent_tokens, "usd": usd_value(self.spent_usd)},
                "budget": {"tokens": self.budget_tokens, "usd": self.budget_usd}, "escalation": self.escalation}


@dataclass(frozen=True)
class CiSummary:
    """Everything the CI outputs show about one run."""

    run_id: str
    seconds: float
    outcomes: list[Outcome]
    review_queue: list[tuple[str, str]]
    """(id, title) of every item awaiting review now, this run's or earlier ones'."""
    capacity: dict[str, Any] | None = None
    """The sprint's capacity (tokens, usd, review_hours), None without a sprint file."""

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)


def collect(settings: Settings, report: RunReport, sprint: str | None) -> CiSummary:
    """Read what the CI outputs need for `report` from the backlog and the store."""
    from agentsprint.cli.items import item_budgets, live_statuses, load

    backlog = load(settings)
    budgets = item_budgets(settings)
    failed = [item_id for item_id, status in report.results.items() if status not in DONE_LIKE]
    summaries = escalation_summaries(settings, failed)
    outcomes = []
    for item_id, status in report.results.items():
        item = backlog.items.get(item_id)
        limit_tokens, limit_usd = (item.budget.tokens, item.budget.usd) if item else (None, None)
        row = budgets.rows.get(f"item:{item_id}", (limit_tokens, limit_usd, 0, 0.0))
        outcomes.append(Outcome(item_id, item.title if item else "", status, report.notes.get(item_id, ""),
                                row[2], row[3], row[0], row[1], summaries.get(item_id, "")))
    queue = [(item_id, backlog.items[item_id].title if item_id in backlog.items else "")
             for item_id, (status, _) in sorted(live_statuses(settings).items()) if status == "awaiting_review"]
    return CiSummary(report.run_id, report.seconds, outcomes, queue, sprint_capacity(settings, sprint))


def sprint_capacity(settings: Settings, sprint: str | None) -> dict[str, Any] | None:
    """The capacity (tokens, usd, review_hours) in `backlog/sprints/<sprint>.yml`; None without a sprint file."""
    from agentsprint.backlog.sprints import find_sprint

    found = None if sprint is None else find_sprint(settings.backlog_dir, sprint)
    return None if found is None else dict(found.capacity.model_dump())


def escalation_summaries(settings: Settings, item_ids: list[str]) -> dict[str, str]:
    """{item id: its open escalation's summary} for the items of `item_ids` that have one."""
    if not item_ids:
        return {}
    from agentsprint.store import Store
    from agentsprint.store.runs import latest_escalation

    store = Store(settings.database_url)
    try:
        found = {item_id: latest_escalation(store, item_id) for item_id in item_ids}
    finally:
        store.close()
    return {item_id: escalation_text(e.reason, e.detail, e.package) for item_id, e in found.items()
            if e is not None and e.resolved_at is None}


def escalation_text(reason: str, detail: str, package: EscalationPackage | None) -> str:
    """The escalation in a few lines: reason, spend by role, the last round's failed gates and QA reasons."""
    from agentsprint.money import plural, usd_text

    lines = [f"escalated: {reason} - {detail}".rstrip(" -")]
    if package is None:
        return lines[0]
    for spend in package.spend:
        lines.append(f"spent by {spend.role} ({spend.model}): {spend.tokens:,} tokens, {usd_text(spend.usd)} "
                     f"in {plural(spend.calls, 'call')}")
    if package.rounds:
        lines += _round_lines(package.rounds[-1])
    if package.branch:
        lines.append(f"work preserved on branch {package.branch} at {package.head}")
    return "\n".join(lines)


def _round_lines(last: RoundRecord) -> list[str]:
    from agentsprint.cli.escalations import tail_lines

    failed = [gate for gate in last.gates if not gate.get("passed")]
    lines = [f"round {last.round}: {last.verdict}; gates failed: {', '.join(g['name'] for g in failed) or 'none'}"]
    for gate in failed:
        lines.append(f"gate {gate['name']} output (last {GATE_TAIL_LINES} lines):")
        lines += [f"  {line}" for line in tail_lines(str(gate.get("output", "")), GATE_TAIL_LINES)]
    lines += [f"- {reason if len(reason) <= 300 else '...' + reason[-300:]}" for reason in last.reasons]
    return lines


def summary_json(report: RunReport, summary: CiSummary) -> dict[str, Any]:
    """The run's JSON: the report's keys (results, notes, ...), `ok`, and per-item outcomes and the review queue."""
    return report.model_dump() | {"ok": summary.ok, "items": [o.record() for o in summary.outcomes],
                                  "review_queue": [item_id for item_id, _ in summary.review_queue],
                                  "capacity": summary.capacity}


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (control characters from command output)."""
    return _NOT_XML.sub("?", text)


def junit_xml(summary: CiSummary) -> str:
    """A JUnit XML report: one testcase per item; a failure carries the status, note and escalation summary."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="agentsprint", tests=str(len(summary.outcomes)),
                       failures=str(sum(not o.ok for o in summary.outcomes)), errors="0", skipped="0",
                       time=f"{summary.seconds:.3f}")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run_id", value=summary.run_id)
    for outcome in summary.outcomes:
        case = ET.SubElement(suite, "testcase", classname="agentsprint", name=outcome.item_id)
        if not outcome.ok:
            failure = ET.SubElement(case, "failure", type=outcome.status, message=xml_text(outcome.headline))
            failure.text = xml_text(outcome.escalation or outcome.note or outcome.status)
        ET.SubElement(case, "system-out").text = xml_text(_spend_line(outcome))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _spend_line(outcome: Outcome) -> str:
    from agentsprint.cli.views import count
    from agentsprint.money import usd_text

    line = f"{outcome.item_id} {outcome.title}: {outcome.status}"
    if outcome.note:
        line += f" ({outcome.note})"
    return line + f"; spent {count(outcome.spent_tokens)} tokens, {usd_text(outcome.spent_usd)}" + (
        f" of {_limit(outcome.budget_tokens, count)} tokens, {_limit(outcome.budget_usd, usd_text)}")


def _limit(value: Any, show: Any) -> str:
    return "no cap" if value is None else str(show(value))


def write_junit(summary: CiSummary, path: Path) -> None:
    """Write the JUnit report to `path` atomically (a reader never sees half a file)."""
    from agentsprint.backlog.files import atomic_write

    atomic_write(path, junit_xml(summary), durable=False)
