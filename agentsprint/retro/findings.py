"""Findings in words: the few sentences a lead reads first, each from figures of the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentsprint.money import plural, usd_text

Report = dict[str, Any]


def review_bound(report: Report) -> str | None:
    """Humans are the bottleneck: more items reach review than people decide."""
    if not report["review_bound"]:
        return None
    load = report["review_load"]
    text = (f"review-bound: agents brought {plural(report['items_to_review'], 'item')} to review, "
            f"humans decided {report['review_decisions']}")
    if load["capacity_hours"] is not None:
        text += f"; {load['hours']:.1f} h of review load vs {load['capacity_hours']:g} h capacity"
    return text


def supervisor_share(report: Report) -> str | None:
    """How much the supervisor costs next to the roles that do the work."""
    share = report["supervisor_worker_ratio"]["usd"]
    return None if share is None else f"supervisor spend is {share:.0%} of worker spend"


def escalations(report: Report) -> str | None:
    """The commonest escalation reason."""
    counts = report["escalations_by_reason"]
    total = sum(counts.values())
    if not total:
        return None
    reason, count = max(counts.items(), key=lambda pair: pair[1])
    return f"{count} of {plural(total, 'escalation')} {'was' if count == 1 else 'were'} {reason}"


def overruns(report: Report) -> str | None:
    """Spend beyond a budget: a defect, reported loudly."""
    found = report["budget_overruns"]
    if not found:
        return None
    named = ", ".join(f"{o['item']} {o['kind']} (+{o['over']:.1%})" for o in found)
    return f"{plural(len(found), 'budget overrun')}: {named} - a defect, reported loudly"


def waste(report: Report) -> str | None:
    """Spend on items that did not finish."""
    total, wasted = report["usd_total"], report["wasted_spend"]["usd"]
    if not total or not wasted:
        return None
    return f"{wasted / total:.0%} of spend ({usd_text(wasted)}) went to items not done"


def handoffs(report: Report) -> str | None:
    """Agents that handed each other malformed work."""
    bad = report["handoffs_malformed"]
    if not bad["total"]:
        return None
    role = max(bad["by_role"].items(), key=lambda pair: pair[1])[0]
    return (f"{plural(bad['total'], 'malformed handoff')} of {report['handoffs_total']} "
            f"(validity {report['handoff_validity']:.1%}), most from the {role}")


def cost_kinds(report: Report) -> str | None:
    """Money that is not what a provider billed."""
    split = report["cost_kind_split"]
    other = {kind: usd for kind, usd in split.items() if kind != "measured" and usd}
    if not other:
        return None
    parts = ", ".join(f"{usd_text(usd)} {kind}" for kind, usd in other.items())
    return f"not all spend is provider-measured: {parts} of {usd_text(report['usd_total'])}"


def forecasts(report: Report) -> str | None:
    """Forecasts that keep falling short: the median forecast error of done items is above +10 %."""
    errors = sorted((report.get("forecast_error") or {}).values())
    if not errors or errors[len(errors) // 2] <= 0.1:
        return None
    return f"forecasts are low: done items spent a median {errors[len(errors) // 2]:+.0%} over their forecast"


def nothing_ran(report: Report) -> str | None:
    """A scope without any model call."""
    return "no model calls in this scope" if not report["calls_total"] else None


RULES: list[Callable[[Report], str | None]] = [
    nothing_ran, overruns, review_bound, escalations, forecasts, supervisor_share, waste, handoffs, cost_kinds,
]


def findings(report: Report) -> list[str]:
    """The findings that apply to `report`, most important first."""
    return [text for rule in RULES if (text := rule(report)) is not None]
