"""The retro's figures (METRICS.md): pure functions of a scoped History; null, never 0, when one cannot be computed.

Every function takes typed records and returns plain JSON-ready values. Money is rounded for JSON by
agentsprint.money; durations are seconds; rates are per day.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentsprint.money import usd_value
from agentsprint.store.history import History, ItemRecord, SpentCall

SCHEMA_VERSION = 1
ROLES = ("supervisor", "coder", "qa")
ESCALATION_REASONS = ("budget", "rounds", "time", "loop", "supervisor", "conflict", "policy")
NOT_DONE = ("escalated", "failed", "stopped", "dropped")
COST_KINDS = ("measured", "imputed", "estimated")
DAY = 86400.0


@dataclass(frozen=True)
class Params:
    """What the figures need besides the history: review rate, capacity, the period and the item count."""

    lines_per_hour: float = 400.0
    review_capacity_hours: float | None = None
    period_start: float | None = None
    period_end: float = 0.0
    items_planned: int | None = None
    forecasts_usd: dict[str, float] | None = None


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0."""
    return numerator / denominator if denominator else None


def percentile(values: Iterable[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..1) of `values`, None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def median(values: Iterable[float]) -> float | None:
    """The median of `values`, None when there are none."""
    found = list(values)
    return statistics.median(found) if found else None


def real_calls(history: History) -> list[SpentCall]:
    """Calls charged to real scopes (shadow runs are reported apart)."""
    return [c for c in history.calls if not c.shadow]


def status_ids(history: History, *statuses: str) -> set[str]:
    """Ids of the items whose live status is one of `statuses`."""
    return {i.item_id for i in history.items if i.status in statuses}


# --- outcome -----------------------------------------------------------------------------------------


def rounds_by_item(history: History) -> dict[str, list[str]]:
    """Each item's QA verdicts in order."""
    found: dict[str, list[str]] = defaultdict(list)
    for record in history.rounds:
        found[record.item_id].append(record.verdict)
    return found


def outcome(history: History, planned: int | None = None) -> dict[str, Any]:
    """Counts by live status, escalations by reason, first-pass rate and rounds of done items."""
    counts = Counter(i.status for i in history.items)
    done = sorted(status_ids(history, "done"))
    verdicts = rounds_by_item(history)
    judged = [i for i in done if verdicts.get(i)]
    rounds = [len(verdicts[i]) or 0 for i in judged]
    return {
        "items_planned": planned if planned is not None else len(history.items),
        **{f"items_{status}": counts.get(status, 0)
           for status in ("done", "awaiting_review", "escalated", "failed", "stopped")},
        "escalations_by_reason": escalations_by_reason(history),
        "first_pass_rate": ratio(sum(verdicts[i][0] == "approve" for i in judged), len(judged)),
        "rounds_per_done_item": {"mean": ratio(sum(rounds), len(rounds)), "max": max(rounds, default=None)},
    }


def escalations_by_reason(history: History) -> dict[str, int]:
    """Escalations recorded in scope, per reason (every reason present, 0 when none)."""
    counts = Counter(e.reason for e in history.escalations)
    return {reason: counts.get(reason, 0) for reason in ESCALATION_REASONS}


# --- token ROI ---------------------------------------------------------------------------------------


def spend(calls: Iterable[SpentCall]) -> dict[str, Any]:
    """Tokens (input + output) and USD of `calls`."""
    found = list(calls)
    return {"tokens": sum(c.tokens for c in found), "usd": usd_value(sum(c.usd for c in found)),
            "calls": sum(c.calls for c in found)}


def split_by(calls: list[SpentCall], key: str, always: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Spend of `calls` grouped by a call attribute (`role`, `model`), with `always` present."""
    groups: dict[str, list[SpentCall]] = {name: [] for name in always}
    for call in calls:
        groups.setdefault(getattr(call, key), []).append(call)
    return {name: spend(group) for name, group in groups.items()}


def token_split(calls: list[SpentCall]) -> dict[str, int]:
    """Input, cached input (part of input) and output tokens."""
    return {"input": sum(c.input_tokens for c in calls), "cached_input": sum(c.cached_input_tokens for c in calls),
            "output": sum(c.output_tokens for c in calls)}


def per_done(total: dict[str, Any], done: int) -> dict[str, float | None]:
    """ALL spend divided by the items done: what one successful completion cost."""
    usd = ratio(total["usd"], done)
    return {"tokens": ratio(total["tokens"], done), "usd": usd_value(usd) if usd is not None else None}


def value_delivered(history: History) -> int:
    """Sum of the value points of done items."""
    return sum(i.value for i in history.items if i.status == "done")


def supervisor_worker_ratio(by_role: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Supervisor spend / the other roles' (coder, qa, security) spend, in tokens and USD."""
    supervisor = by_role.get("supervisor", {"tokens": 0, "usd": 0.0})
    workers = [v for role, v in by_role.items() if role != "supervisor"]
    return {"tokens": ratio(supervisor["tokens"], sum(w["tokens"] for w in workers)),
            "usd": ratio(supervisor["usd"], sum(w["usd"] for w in workers))}


def cost_kind_split(calls: list[SpentCall]) -> dict[str, float]:
    """USD by how it is known: measured, imputed, estimated."""
    totals = {kind: 0.0 for kind in COST_KINDS}
    for call in calls:
        totals[call.cost_kind] = totals.get(call.cost_kind, 0.0) + call.usd
    return {kind: usd_value(amount) for kind, amount in totals.items()}


def token_roi(history: History) -> dict[str, Any]:
    """Totals and splits, cost per done item, waste, value and ROI, supervisor ratio, cost kinds."""
    calls = real_calls(history)
    total = spend(calls)
    by_role = split_by(calls, "role", ROLES)
    done = len(status_ids(history, "done"))
    wasted_ids = status_ids(history, *NOT_DONE)
    value = value_delivered(history)
    return {
        "tokens_total": total["tokens"], "usd_total": total["usd"], "calls_total": total["calls"],
        "by_role": by_role, "by_model": split_by(calls, "model"), "tokens": token_split(calls),
        "cost_per_done_item": per_done(total, done),
        "wasted_spend": {k: v for k, v in spend(c for c in calls if c.item_id in wasted_ids).items() if k != "calls"},
        "value_delivered": value,
        "roi_value_per_usd": ratio(value, total["usd"]) if done else None,
        "roi_value_per_mtok": ratio(value, total["tokens"] / 1e6) if done else None,
        "supervisor_worker_ratio": supervisor_worker_ratio(by_role),
        "cost_kind_split": cost_kind_split(calls),
    }


def item_limits(item: ItemRecord) -> dict[str, float | None]:
    """The item's effective limits: the budget row's (top-ups included), else its definition's."""
    tokens = item.limit_tokens if item.limit_tokens is not None else item.budget.get("tokens")
    usd = item.limit_usd if item.limit_usd is not None else item.budget.get("usd")
    return {"tokens": tokens, "usd": usd, "rounds": item.budget.get("rounds")}


def item_spend(history: History) -> dict[str, dict[str, Any]]:
    """Real spend per item: tokens, USD and tokens by role."""
    found: dict[str, dict[str, Any]] = {i.item_id: {"tokens": 0, "usd": 0.0, "by_role": Counter()}
                                        for i in history.items}
    for call in real_calls(history):
        entry = found.setdefault(call.item_id, {"tokens": 0, "usd": 0.0, "by_role": Counter()})
        entry["tokens"] += call.tokens
        entry["usd"] += call.usd
        entry["by_role"][call.role] += call.tokens
    return found


def utilization(item: ItemRecord, spent: dict[str, Any]) -> dict[str, float | None]:
    """Spent / limit for tokens, USD and rounds (None where the item has no such limit)."""
    limits = item_limits(item)
    used = {"tokens": spent["tokens"], "usd": spent["usd"], "rounds": item.round}
    return {kind: ratio(used[kind], limit) if limit else None for kind, limit in limits.items()}


def budget_figures(history: History) -> dict[str, Any]:
    """Per-item budget utilization, and the items whose spend exceeded a limit (a defect)."""
    spent = item_spend(history)
    usage = {i.item_id: utilization(i, spent[i.item_id]) for i in history.items}
    overruns = [{"item": item_id, "kind": kind, "over": round(share - 1, 6)}
                for item_id, shares in usage.items() for kind, share in shares.items()
                if kind != "rounds" and share is not None and share > 1 + 1e-9]
    return {"budget_utilization": usage, "budget_overruns": overruns}


def forecast_error(history: History, forecasts_usd: dict[str, float] | None) -> dict[str, float] | None:
    """(spent - forecast) / forecast in USD per done item with a forecast; None without forecasts."""
    if not forecasts_usd:
        return None
    spent = item_spend(history)
    return {i: (spent[i]["usd"] - forecasts_usd[i]) / forecasts_usd[i]
            for i in sorted(status_ids(history, "done")) if forecasts_usd.get(i)}


# --- handoffs ----------------------------------------------------------------------------------------


def handoff_figures(history: History) -> dict[str, Any]:
    """Handoffs offered, malformed ones by role and model, and the valid share."""
    bad = [h for h in history.handoffs if not h.valid]
    total = len(history.handoffs)
    return {
        "handoffs_total": total,
        "handoffs_malformed": {"total": len(bad), "by_role": dict(Counter(h.role for h in bad)),
                               "by_model": dict(Counter(h.model for h in bad))},
        "handoff_validity": ratio(total - len(bad), total),
    }


# --- review bottleneck -------------------------------------------------------------------------------


def review_queue(history: History) -> list[dict[str, float]]:
    """Items in awaiting_review after each change of that number."""
    count, points = 0, []
    for t in sorted(history.transitions, key=lambda t: t.at):
        change = (t.to_status == "awaiting_review") - (t.from_status == "awaiting_review")
        if change:
            count += change
            points.append({"at": t.at, "count": count})
    return points


def spread(values: list[float]) -> dict[str, float | None]:
    """Median, p90 and max of `values` (all None when there are none)."""
    return {"median": median(values), "p90": percentile(values, 0.9), "max": max(values, default=None)}


def per_day(count: int, params: Params) -> float | None:
    """`count` per day over the scope's period; None when the period is unknown or empty."""
    if params.period_start is None:
        return None
    return ratio(count, (params.period_end - params.period_start) / DAY)


def review_load(history: History, params: Params) -> dict[str, float | None]:
    """Changed lines awaiting review, the hours they need, and the review capacity."""
    waiting = status_ids(history, "awaiting_review")
    last: dict[str, int] = {}
    for record in history.rounds:
        if record.item_id in waiting:  # the last round is the diff waiting
            last[record.item_id] = record.changed_lines
    lines = sum(last.values())
    return {"changed_lines": lines, "hours": lines / params.lines_per_hour,
            "capacity_hours": params.review_capacity_hours}


def review_figures(history: History, params: Params) -> dict[str, Any]:
    """The review bottleneck: queue, waits, throughputs, what is left unreviewed, load and rejections."""
    waits = [r.decided_at - r.requested_at for r in history.reviews if r.requested_at is not None]
    arrived = sum(t.to_status == "awaiting_review" for t in history.transitions)
    human = per_day(len(history.reviews), params)
    agents = per_day(arrived, params)
    rejections = sum(r.decision == "reject" for r in history.reviews)
    return {
        "review_queue": review_queue(history),
        "review_wait": spread(waits),
        "review_throughput": human,
        "agent_throughput": agents,
        "review_bound": agents > human if human is not None and agents is not None else None,
        "items_to_review": arrived,
        "review_decisions": len(history.reviews),
        "unreviewed_at_end": len(status_ids(history, "awaiting_review")),
        "review_load": review_load(history, params),
        "review_rejections": ratio(rejections, len(history.reviews)),
    }


# --- reliability -------------------------------------------------------------------------------------


def wall_times(history: History) -> list[float]:
    """Seconds from an item's first `running` to its `done`, for done items."""
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    for t in history.transitions:
        if t.to_status == "running":
            started.setdefault(t.item_id, t.at)
        elif t.to_status == "done":
            finished[t.item_id] = t.at
    return [at - started[i] for i, at in finished.items() if i in started]


def reliability(history: History) -> dict[str, Any]:
    """Provider errors, retries, timeouts, loop-guard trips, policy blocks, escalation MTTR, wall time."""
    calls = real_calls(history)
    repairs = [e.resolved_at - e.created_at for e in history.escalations
               if e.resolved_at is not None and e.resolution not in (None, "shadow")]
    times = wall_times(history)
    return {
        "provider_errors": sum(c.errors for c in calls),
        "retries": sum(c.retries for c in calls),
        "timeouts": sum(c.timeouts for c in calls),
        "loop_guard_trips": sum(e.reason == "loop" for e in history.escalations),
        "policy_blocks": len(history.policy_blocks),
        "escalation_mttr": median(repairs),
        "wall_time_per_done_item": {"median": median(times), "p90": percentile(times, 0.9)},
    }


# --- shadow, items, series ---------------------------------------------------------------------------


def shadow(history: History) -> dict[str, Any]:
    """Spend of shadow runs, apart from the real totals."""
    calls = [c for c in history.calls if c.shadow]
    total = spend(calls)
    return {"calls": total["calls"], "tokens_total": total["tokens"], "usd_total": total["usd"],
            "items": sorted({c.item_id for c in calls})}


def last_escalation(history: History) -> dict[str, str]:
    """The reason of each item's latest escalation."""
    return {e.item_id: e.reason for e in history.escalations}


def review_waits(history: History) -> dict[str, float]:
    """Total seconds each item waited for a human decision."""
    waits: dict[str, float] = defaultdict(float)
    for r in history.reviews:
        if r.requested_at is not None:
            waits[r.item_id] += r.decided_at - r.requested_at
    return waits


def item_rows(history: History) -> list[dict[str, Any]]:
    """One row per item: what the CSV export holds and the cost-per-item chart draws."""
    spent, waits, reasons = item_spend(history), review_waits(history), last_escalation(history)
    rows = []
    for item in history.items:
        mine, limits = spent[item.item_id], item_limits(item)
        rows.append({
            "id": item.item_id, "title": item.title, "type": item.type, "status": item.status,
            "rounds": item.round, **{f"tokens_{role}": mine["by_role"].get(role, 0) for role in ROLES},
            "tokens": mine["tokens"], "usd": usd_value(mine["usd"]), "budget_tokens": limits["tokens"],
            "budget_usd": limits["usd"], "utilization": _rounded(utilization(item, mine)["usd"]), "value": item.value,
            "review_wait": waits.get(item.item_id), "escalation_reason": reasons.get(item.item_id),
        })
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def burn_up(history: History, points: int = 400) -> list[dict[str, float]]:
    """Cumulative real USD over time, at most `points` points (the last is always the total)."""
    calls = sorted(real_calls(history), key=lambda c: c.at)
    step = max(len(calls) // points, 1)  # the store already sums calls over ~400 stretches
    total, series = 0.0, []
    for index, call in enumerate(calls, 1):
        total += call.usd
        if index % step == 0 or index == len(calls):
            series.append({"at": call.at, "usd": usd_value(total)})
    return series


def compute(history: History, params: Params) -> dict[str, Any]:
    """Every METRICS.md figure of a scoped history, keyed as the JSON export."""
    return {
        "schema_version": SCHEMA_VERSION,
        **outcome(history, params.items_planned),
        **token_roi(history),
        **budget_figures(history),
        "forecast_error": forecast_error(history, params.forecasts_usd),
        **handoff_figures(history),
        **review_figures(history, params),
        **reliability(history),
        "shadow": shadow(history),
        "burn_up": burn_up(history),
        "items": item_rows(history),
    }
