"""The demo's scripted agents: stateless responders keyed on item, round and conversation step.

Stateless on purpose: a replayed or resumed conversation gets the same reply it got before, so the
same scripts drive the crash/resume tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentsprint.llm.scripted import ScriptedReply, tool_call

ITEM = re.compile(r"## Item ([A-Z][A-Z0-9]*-\d+):")
ROUND = re.compile(r"round (\d+)", re.IGNORECASE)

DISCOUNT_V1 = '''"""Prices of order lines."""


def line_total(price, quantity):
    """Price times quantity, rounded to cents."""
    return round(price * quantity, 2)


def apply_discount(price, percent):
    """The price after a percentage discount, rounded to cents."""
    return round(price * (1 - percent / 100), 2)
'''

EXPORT = '''"""CSV export of order lines."""

import csv
import io

from shop.pricing import line_total


def to_csv(lines):
    """name,price,quantity,total rows with a header."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "price", "quantity", "total"])
    for name, price, qty in lines:
        writer.writerow([name, price, qty, line_total(price, qty)])
    return out.getvalue()
'''

Step = dict[str, Any]

CODER: dict[tuple[str, int], list[Any]] = {
    ("AS-1", 1): [
        tool_call("read_file", path="shop/pagination.py"),
        tool_call("edit_file", path="shop/pagination.py", old="    start = page * per_page",
                  new="    start = (page - 1) * per_page"),
        tool_call("run", command="python -m unittest -q tests.test_pagination"),
        tool_call("finish", summary="Pages start at 1: the first item of page p is (p - 1) * per_page."),
    ],
    ("AS-2", 1): [
        tool_call("read_file", path="shop/pricing.py"),
        tool_call("write_file", path="shop/pricing.py", content=DISCOUNT_V1),
        tool_call("finish", summary="Added apply_discount(price, percent)."),
    ],
    ("AS-2", 2): [
        tool_call("edit_file", path="shop/pricing.py",
                  old='    """The price after a percentage discount, rounded to cents."""\n',
                  new='    """The price after a percentage discount, rounded to cents."""\n'
                      "    if not 0 <= percent <= 100:\n"
                      '        raise ValueError("percent must be between 0 and 100")\n'),
        tool_call("run", command="python -m unittest -q"),
        tool_call("finish", summary="apply_discount now rejects percentages outside 0..100."),
    ],
    ("AS-3", 1): [
        tool_call("read_file", path="shop/report.py"),
        tool_call("read_file", path="shop/pricing.py"),
        tool_call("search", pattern="line_total", path="."),
        tool_call("list_files", path="shop"),
        tool_call("finish", summary="Refactored the report."),
    ],
    ("AS-4", 1): [
        tool_call("list_files", path="shop"),
        tool_call("write_file", path="shop/export.py", content=EXPORT),
        tool_call("run", command="python -m unittest -q"),
        tool_call("finish", summary="Added shop/export.py with to_csv(lines)."),
    ],
}

PLANS: dict[str, Any] = {
    "AS-1": tool_call("submit_plan", steps=["Read shop/pagination.py", "Make pages start at 1 in paginate",
                                            "Run the pagination tests"],
                      acceptance=["page 1 starts with the first item", "tests/test_pagination.py passes"],
                      escalate=None),
    "AS-2": tool_call("submit_plan", steps=["Add apply_discount(price, percent) to shop/pricing.py"],
                      acceptance=["apply_discount(100, 15) == 85.0", "percent outside 0..100 raises ValueError"],
                      escalate=None),
    "AS-3": tool_call("submit_plan", steps=["Read shop/report.py", "Use a list comprehension and sum()",
                                            "Keep the output identical"],
                      acceptance=["sales_report output unchanged"], escalate=None),
    "AS-4": tool_call("submit_plan", steps=["Add shop/export.py with to_csv(lines)"],
                      acceptance=["header row name,price,quantity,total", "one row per order line"],
                      escalate=None),
}

VERDICTS: dict[tuple[str, int], Any] = {
    ("AS-2", 1): tool_call("submit_verdict", verdict="reject", reasons=[
        "apply_discount accepts percentages outside 0..100 (acceptance criterion 2 is not met)"]),
}


def _context(body: dict[str, Any]) -> tuple[str, int, int]:
    """(item id, round, assistant turns so far) of a chat request."""
    messages = body.get("messages", [])
    first_user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    item = ITEM.search(first_user)
    found_round = ROUND.search(first_user)
    steps = sum(1 for m in messages if m.get("role") == "assistant")
    return (item.group(1) if item else "?"), (int(found_round.group(1)) if found_round else 1), steps


Reply = Step | ScriptedReply


def _reply(step: Reply) -> ScriptedReply:
    return step if isinstance(step, ScriptedReply) else ScriptedReply(tool_calls=[step])


class ScriptBook:
    """Stateless responders for the supervisor, coder and QA models, keyed on item, round and step."""

    def __init__(self, plans: Mapping[str, Reply], coder: Mapping[tuple[str, int], Sequence[Reply]],
                 verdicts: Mapping[tuple[str, int], Reply] | None = None,
                 supervisor_steps: Mapping[tuple[str, int], Sequence[Reply]] | None = None) -> None:
        self.plans, self.coder_steps = plans, coder
        self.verdicts = verdicts or {}
        self.supervisor_steps = supervisor_steps or {}

    def supervisor(self, body: dict[str, Any]) -> ScriptedReply:
        item, round_no, step = _context(body)
        script = self.supervisor_steps.get((item, round_no))
        if script:
            return _reply(script[min(step, len(script) - 1)])
        return _reply(self.plans.get(item, tool_call("submit_plan", steps=["Do the item"], acceptance=[],
                                                     escalate=None)))

    def coder(self, body: dict[str, Any]) -> ScriptedReply:
        item, round_no, step = _context(body)
        script = self.coder_steps.get((item, round_no)) or self.coder_steps.get((item, 1)) or [
            tool_call("finish", summary="done")]
        return _reply(script[min(step, len(script) - 1)])

    def qa(self, body: dict[str, Any]) -> ScriptedReply:
        item, round_no, _ = _context(body)
        return _reply(self.verdicts.get((item, round_no)) or tool_call(
            "submit_verdict", verdict="approve", reasons=["the diff meets every acceptance criterion"]))

    def responders(self, prefix: str = "demo") -> dict[str, Callable[[dict[str, Any]], ScriptedReply]]:
        return {f"{prefix}-supervisor": self.supervisor, f"{prefix}-coder": self.coder, f"{prefix}-qa": self.qa}


DEMO_BOOK = ScriptBook(PLANS, CODER, VERDICTS)
RESPONDERS = DEMO_BOOK.responders("demo")
