"""The CI report formats from hand-built run summaries: JUnit XML and the step summary's Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from agentsprint.cli.ci_report import CiSummary, Outcome, junit_xml
from agentsprint.cli.step_summary import markdown

ESCALATED = Outcome("AS-2", "Fix | pipes", "escalated", "", 1500, 0.25, 1000, 0.2,
                    "escalated: budget - no reply fits\ngate tests output:\n  \x1b[31mred\x1b[0m \x00 end")
DONE = Outcome("AS-1", "Done one", "done", "merged", 200, 0.01, None, None)


def summary(capacity: dict[str, float | None] | None = None) -> CiSummary:
    return CiSummary("run-1", 12.0, [DONE, ESCALATED], [], capacity)


def test_junit_holds_control_characters_of_command_output_as_valid_xml() -> None:
    suite = ET.fromstring(junit_xml(summary()))
    failure = suite.find("testcase[@name='AS-2']/failure")
    assert failure is not None and failure.get("message") == "escalated: budget - no reply fits"
    assert "red" in (failure.text or "") and "end" in (failure.text or "")
    assert suite.find("testcase[@name='AS-1']/failure") is None
    assert "no cap" in (suite.findtext("testcase[@name='AS-1']/system-out") or "")


def test_markdown_rows_stay_one_table_row_each_with_budgets_and_no_caps() -> None:
    text = markdown(summary())
    rows = [line for line in text.splitlines() if line.startswith("| AS-")]
    assert len(rows) == 2 and all(row.count(" | ") == 4 for row in (r.replace("\\|", "") for r in rows)), rows
    assert "| AS-2 Fix \\| pipes | escalated | 1.5k / 1k | $0.25 / $0.20 | escalated: budget - no reply fits |" in rows
    assert "| AS-1 Done one | done | 200 / no cap | $0.01 / no cap | merged |" in rows
    assert "**1 of 2 item(s) not done** (AS-2 escalated)" in text and "Nothing awaits review." in text
    assert "Sprint capacity" not in text, "no sprint file, no capacity line"


def test_markdown_shows_the_sprint_capacity_when_there_is_one() -> None:
    text = markdown(summary({"tokens": 2_000_000, "usd": 40.0, "review_hours": 6.0}))
    assert "**Sprint capacity**: 1,700 of 2,000,000 tokens, $0.26 of $40.00, 6 review hours." in text
