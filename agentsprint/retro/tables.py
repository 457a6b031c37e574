"""The report's figures as titled tables of text: what Markdown, HTML and the terminal all show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentsprint.money import usd_text

NONE = "n/a"
"""How a figure that cannot be computed (null) reads."""

Report = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A titled table: a header row and rows of text cells."""

    title: str
    header: list[str]
    rows: list[list[str]]


def num(value: float | int | None, digits: int = 2) -> str:
    """A number for people; n/a for null."""
    if value is None:
        return NONE
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    """A share as a percentage; n/a for null."""
    return NONE if value is None else f"{value:.1%}"


def usd(value: float | None, report: Report | None = None) -> str:
    """Money through the one formatter, with how it is known when not all of it is provider-measured."""
    if value is None:
        return NONE
    text = usd_text(value)
    kinds = report["cost_kind_split"] if report else {}
    others = [kind for kind, amount in kinds.items() if kind != "measured" and amount]
    return text + (f" (includes {' and '.join(others)})" if others and value else "")


def duration(seconds: float | None) -> str:
    """Seconds as s, min or h; n/a for null."""
    if seconds is None:
        return NONE
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def outcome(r: Report) -> Table:
    """The Outcome section: counts, escalations, first-pass rate, rounds."""
    reasons = ", ".join(f"{k} {v}" for k, v in r["escalations_by_reason"].items() if v) or "none"
    rounds = r["rounds_per_done_item"]
    return Table("Outcome", ["figure", "value"], [
        ["items planned", num(r["items_planned"])], ["done", num(r["items_done"])],
        ["awaiting review", num(r["items_awaiting_review"])], ["escalated", num(r["items_escalated"])],
        ["failed", num(r["items_failed"])], ["stopped", num(r["items_stopped"])],
        ["escalations by reason", reasons], ["first-pass rate", pct(r["first_pass_rate"])],
        ["QA rounds per done item (mean / max)", f"{num(rounds['mean'])} / {num(rounds['max'])}"],
    ])


def token_roi(r: Report) -> Table:
    """The Token ROI section: totals, cost per done item, waste, value, ratios."""
    per, waste, ratio = r["cost_per_done_item"], r["wasted_spend"], r["supervisor_worker_ratio"]
    return Table("Token ROI", ["figure", "value"], [
        ["tokens total", num(r["tokens_total"])], ["USD total", usd(r["usd_total"], r)],
        ["cost per done item", f"{num(per['tokens'], 0)} tokens, {usd(per['usd'], r)}"],
        ["wasted spend (items not done)", f"{num(waste['tokens'])} tokens, {usd(waste['usd'], r)}"],
        ["value delivered", num(r["value_delivered"])],
        ["value per USD", num(r["roi_value_per_usd"])], ["value per million tokens", num(r["roi_value_per_mtok"])],
        ["supervisor / worker spend", f"{pct(ratio['usd'])} of USD, {pct(ratio['tokens'])} of tokens"],
        ["budget overruns", num(len(r["budget_overruns"]))],
        ["cost by kind", ", ".join(f"{k} {usd_text(v)}" for k, v in r["cost_kind_split"].items())],
    ])


def split(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    """Spend split by role or by model."""
    return Table(title, ["", "calls", "tokens", "USD"],
                 [[name, num(g["calls"]), num(g["tokens"]), usd_text(g["usd"])] for name, g in groups.items()])


def tokens(r: Report) -> Table:
    """Tokens split into uncached input, cached input and output."""
    t = r["tokens"]
    return Table("Tokens by kind", ["kind", "tokens"],
                 [["input (uncached)", num(t["input"] - t["cached_input"])], ["cached input", num(t["cached_input"])],
                  ["output", num(t["output"])]])


def handoffs(r: Report) -> Table:
    """The Handoffs section."""
    bad = r["handoffs_malformed"]
    by = "; ".join(f"{k} {v}" for k, v in {**bad["by_role"], **bad["by_model"]}.items()) or "none"
    return Table("Handoffs", ["figure", "value"], [
        ["handoffs", num(r["handoffs_total"])], ["malformed", f"{num(bad['total'])} ({by})"],
        ["validity", pct(r["handoff_validity"])],
    ])


def review(r: Report) -> Table:
    """The Review bottleneck section."""
    wait, load = r["review_wait"], r["review_load"]
    capacity = f" (capacity {num(load['capacity_hours'])} h)" if load["capacity_hours"] is not None else ""
    bound = NONE if r["review_bound"] is None else ("yes" if r["review_bound"] else "no")
    return Table("Review bottleneck", ["figure", "value"], [
        ["review wait (median / p90 / max)",
         " / ".join(duration(wait[k]) for k in ("median", "p90", "max"))],
        ["items brought to review", num(r["items_to_review"])], ["human decisions", num(r["review_decisions"])],
        ["agent throughput (per day)", num(r["agent_throughput"])],
        ["review throughput (per day)", num(r["review_throughput"])], ["review-bound", bound],
        ["unreviewed at end", num(r["unreviewed_at_end"])],
        ["review load", f"{num(load['changed_lines'])} lines, {num(load['hours'])} h" + capacity],
        ["rejections / decisions", pct(r["review_rejections"])],
    ])


def reliability(r: Report) -> Table:
    """The Reliability section."""
    wall = r["wall_time_per_done_item"]
    return Table("Reliability", ["figure", "value"], [
        ["provider errors", num(r["provider_errors"])], ["retries", num(r["retries"])],
        ["timeouts", num(r["timeouts"])], ["loop-guard trips", num(r["loop_guard_trips"])],
        ["policy blocks", num(r["policy_blocks"])], ["escalation MTTR", duration(r["escalation_mttr"])],
        ["wall time per done item (median / p90)", f"{duration(wall['median'])} / {duration(wall['p90'])}"],
    ])


def shadow(r: Report) -> Table:
    """Shadow runs, apart from the totals."""
    s = r["shadow"]
    return Table("Shadow runs (not in the totals)", ["figure", "value"], [
        ["calls", num(s["calls"])], ["tokens", num(s["tokens_total"])], ["USD", usd_text(s["usd_total"])],
        ["items", ", ".join(s["items"]) or "none"],
    ])


def items(r: Report) -> Table:
    """One row per item."""
    return Table("Items", ["item", "type", "status", "rounds", "tokens", "USD", "budget USD", "utilization",
                           "value", "review wait", "escalation"],
                 [[i["id"], i["type"], i["status"], num(i["rounds"]), num(i["tokens"]), usd_text(i["usd"]),
                   usd(i["budget_usd"]), pct(i["utilization"]), num(i["value"]), duration(i["review_wait"]),
                   i["escalation_reason"] or ""] for i in r["items"]])


def all_tables(r: Report) -> list[Table]:
    """Every section of the report, in METRICS.md's order."""
    return [outcome(r), token_roi(r), split("Spend by role", r["by_role"]), split("Spend by model", r["by_model"]),
            tokens(r), handoffs(r), review(r), reliability(r), shadow(r), items(r)]
